[[ int .m ]]
