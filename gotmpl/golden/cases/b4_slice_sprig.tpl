[[ slice .list 1 ]] [[ slice .l ]] [[ slice .list ]]
