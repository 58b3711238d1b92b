[[ first .m ]]
