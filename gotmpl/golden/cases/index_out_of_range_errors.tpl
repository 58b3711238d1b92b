ok
  [[ index .list 5 ]]
