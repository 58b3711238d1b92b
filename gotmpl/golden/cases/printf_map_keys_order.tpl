[[ printf "%v" (dict "z" 1 "a" 2 "m" (list 1 2)) ]]
