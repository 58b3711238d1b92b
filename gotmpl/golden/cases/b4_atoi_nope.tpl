[[ atoi .nope ]]
