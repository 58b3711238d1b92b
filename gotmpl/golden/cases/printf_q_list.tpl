[[ printf "%q" .list ]] [[ printf "%s" .list ]] [[ printf "%d" .nums ]] [[ printf "%x" "hi" ]] [[ printf "%T %T %T %T" 1 1.5 "s" .list ]]
