[[ last .i ]]
