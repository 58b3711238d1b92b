[[ empty .nope ]]
