[[ range .nums ]][[ with . ]][[ if eq . 1 ]][[ continue ]][[ end ]][[ . ]][[ end ]][[ end ]]
