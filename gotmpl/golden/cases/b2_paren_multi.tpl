[[ (len .list) | printf "%03d" ]] [[ printf "%s" (printf "%d-%d" 1 2) ]]
