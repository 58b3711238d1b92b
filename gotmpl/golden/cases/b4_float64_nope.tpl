[[ float64 .nope ]]
