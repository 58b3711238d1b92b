[[ range 3 ]][[ . ]][[ end ]] [[ range $i := .count ]][[ $i ]],[[ end ]] [[ range 0 ]]x[[ else ]]zero[[ end ]]
