[[ range $i, $e := .list ]][[ if eq $i 1 ]][[ $e = "B" ]][[ end ]][[ $e ]][[ end ]]
