[[ printf "%d" (add 1 (len .list)) ]] [[ (print "x") ]]
