[[ len .nope ]]
