[[ .nope | required "x is required" ]]
