[[ atoi .i ]]
