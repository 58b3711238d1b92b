[[ len .i ]]
