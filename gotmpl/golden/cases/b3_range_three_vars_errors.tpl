[[ range $a, $b, $c := .x ]][[ end ]]
