[[ splitList "," .nope ]]
