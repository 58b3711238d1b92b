[[ range $a, 1 := .x ]][[ end ]]
