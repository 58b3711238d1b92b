[[ upper .nope ]]
