[[ range (list nil 1) ]][[ . ]],[[ end ]]
