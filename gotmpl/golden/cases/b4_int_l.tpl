[[ int .l ]]
