[[ len .s ]]
