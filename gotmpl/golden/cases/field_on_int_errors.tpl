[[ .count.x ]]
