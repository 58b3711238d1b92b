[[ .nil ]]
