[[ $last := "" ]][[ range .list ]][[ $last = . ]][[ end ]][[ $last ]]
