[[ compact .nope ]]
