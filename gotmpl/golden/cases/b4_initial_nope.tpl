[[ initial .nope ]]
