[[ $x := .name ]][[ $x ]] [[ $x = "other" ]][[ $x ]]
