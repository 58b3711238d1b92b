[[ kindIs "invalid" .nope ]] [[ kindIs "slice" .l ]] [[ kindIs "map" .n ]]
