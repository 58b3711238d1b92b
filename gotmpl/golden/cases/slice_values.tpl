[[ slice .list 1 ]] [[ slice .list 1 2 ]] [[ slice .s 0 5 ]] [[ slice .list ]]
