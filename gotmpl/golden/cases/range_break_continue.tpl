[[ range .nums ]][[ if eq . 1 ]][[ continue ]][[ end ]][[ if eq . 2 ]][[ break ]][[ end ]][[ . ]][[ end ]]
