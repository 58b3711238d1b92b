[[ ternary 1 2 .count ]]
