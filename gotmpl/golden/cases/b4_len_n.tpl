[[ len .n ]]
