[[ uniq .nope ]]
