[[ range 1 ]][[ break 1 ]][[ end ]]
