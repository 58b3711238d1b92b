[[ until 5 ]] [[ until 0 ]] [[ range until 3 ]][[ . ]][[ end ]]
