[[ .nil.x ]]
