[[ range $e := .list ]][[ $e ]][[ end ]]
