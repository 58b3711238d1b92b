[[ range .nums ]][[ if eq . 1 ]]one[[ else if eq . 2 ]]two[[ else if eq . 3 ]]three[[ else ]]?[[ end ]] [[ end ]]
