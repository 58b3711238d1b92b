[[ int .n ]]
