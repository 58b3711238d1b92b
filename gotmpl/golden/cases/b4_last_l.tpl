[[ last .l ]]
