[[ range .name ]]x[[ end ]]
