[[ quote .name ]] [[ quote .count ]] [[ squote .name ]] [[ quote "a\"b" ]] [[ quote .nope ]]|[[ quote "a" "b" ]] [[ .list | quote ]] [[ quote 1.5 true ]]
