[[ float64 .s ]]
