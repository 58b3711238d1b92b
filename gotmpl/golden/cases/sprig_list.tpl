[[ list 1 "a" .t ]] [[ list ]] [[ len (list 1 2 3) ]] [[ list .nope ]]
