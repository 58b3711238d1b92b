[[ printf "%d %s" "str" 5 ]] [[ printf "%d" ]] [[ printf "x" 1 "a" ]] [[ printf "%d" 1.5 ]]
