[[ range .f ]]x[[ end ]]
