[[ index .list "a" ]]
