[[ keys .nope ]]
