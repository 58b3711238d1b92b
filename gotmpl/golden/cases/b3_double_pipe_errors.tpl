[[ .x || print ]]
