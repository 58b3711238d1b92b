[[ float64 .n ]]
