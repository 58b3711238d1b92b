[[ .name .count ]]
