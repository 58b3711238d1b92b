[[ title .nope ]]
