[[ fail .nope ]]
