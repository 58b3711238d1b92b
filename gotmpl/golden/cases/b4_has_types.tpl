[[ has "a" .list ]] [[ has "a" .n ]] [[ has "a" .nope ]]
