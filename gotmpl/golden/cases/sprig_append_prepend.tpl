[[ append .list "d" ]] [[ prepend .list "z" ]] [[ mustAppend .nums 4 ]] [[ append .emptylist 1 ]] [[ .list ]]
