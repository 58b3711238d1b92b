[[ int64 .nope ]]
