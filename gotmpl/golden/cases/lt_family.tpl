[[ lt 1 2 ]] [[ le 2 2 ]] [[ gt "b" "a" ]] [[ ge 1.5 2.5 ]] [[ lt .neg 0 ]] [[ gt .count 2 ]]
