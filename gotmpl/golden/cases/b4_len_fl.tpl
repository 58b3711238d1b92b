[[ len .fl ]]
