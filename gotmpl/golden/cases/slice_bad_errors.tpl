[[ slice .list 2 1 ]]
