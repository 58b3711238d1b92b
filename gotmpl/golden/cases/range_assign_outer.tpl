[[ $i := 0 ]][[ range .list ]][[ $i = add $i 1 ]][[ end ]][[ $i ]]
