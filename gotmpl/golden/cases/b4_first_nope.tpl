[[ first .nope ]]
