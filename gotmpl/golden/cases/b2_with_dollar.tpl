[[ with .list ]][[ len . ]] [[ len $.nums ]][[ end ]]
