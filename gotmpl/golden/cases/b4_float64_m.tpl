[[ float64 .m ]]
