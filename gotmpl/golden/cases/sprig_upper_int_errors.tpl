[[ upper .count ]]
