[[ .service_name ]]-[[ .count | add 1 ]] [[ if gt .count 1 ]]multi[[ end ]]
