[[ ternary 1 2 .nope ]]
