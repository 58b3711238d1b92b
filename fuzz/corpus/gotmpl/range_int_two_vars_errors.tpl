[[ range $i, $j := 3 ]]x[[ end ]]
