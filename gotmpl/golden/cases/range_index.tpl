[[ range $i, $e := .list ]][[ $i ]]=[[ $e ]] [[ end ]]
