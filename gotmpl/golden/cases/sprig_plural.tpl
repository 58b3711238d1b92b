[[ plural "one" "many" 1 ]] [[ plural "one" "many" 2 ]] [[ plural "one" "many" 0 ]] [[ len .list | plural "item" "items" ]]
