[[ rest .nope ]]
