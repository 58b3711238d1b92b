[[ .name | upper | printf "%s!" ]] [[ "a" | printf "%s-%s" "b" ]]
