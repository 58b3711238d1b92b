[[ last .nope ]]
