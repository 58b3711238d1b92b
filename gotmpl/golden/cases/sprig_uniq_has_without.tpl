[[ uniq (list 1 2 1 "a" "a" 2) ]] [[ has "b" .list ]] [[ has "z" .list ]] [[ has 1 .nope ]] [[ without .list "b" ]] [[ without .nums 1 3 ]]
