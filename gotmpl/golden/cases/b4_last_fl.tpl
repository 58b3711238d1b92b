[[ last .fl ]]
