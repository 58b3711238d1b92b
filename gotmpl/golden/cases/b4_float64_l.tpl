[[ float64 .l ]]
