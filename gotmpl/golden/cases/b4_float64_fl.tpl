[[ float64 .fl ]]
