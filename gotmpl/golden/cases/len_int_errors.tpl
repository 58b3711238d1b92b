[[ len .count ]]
