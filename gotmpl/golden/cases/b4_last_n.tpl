[[ last .n ]]
