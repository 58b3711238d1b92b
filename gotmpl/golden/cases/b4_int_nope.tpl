[[ int .nope ]]
