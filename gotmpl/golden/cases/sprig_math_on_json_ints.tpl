[[ add .count 1 ]] [[ mul .count .count ]] [[ .count | add1 | printf "%d" ]] [[ printf "%d" .count ]]
