[[ has 1 (list 1.0 2) ]] [[ has 1 (list 1 2) ]] [[ uniq (list 1 1.0 "1") ]] [[ without (list 1 "1" nil) nil ]]
