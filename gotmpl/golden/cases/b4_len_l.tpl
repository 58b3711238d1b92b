[[ len .l ]]
