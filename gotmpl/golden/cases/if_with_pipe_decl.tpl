[[ if $v := .count ]][[ $v ]][[ end ]]
