[[ lower .nope ]]
