[[ float64 .i ]]
