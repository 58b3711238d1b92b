[[ true ]] [[ false ]] [[ .t ]] [[ .fl ]]
