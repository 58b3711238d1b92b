[[ int64 .m ]]
