[[ .name ]] [[ .count ]] [[ .t ]]
