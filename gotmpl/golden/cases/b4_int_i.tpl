[[ int .i ]]
