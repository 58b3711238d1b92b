[[ add1 .nope ]]
