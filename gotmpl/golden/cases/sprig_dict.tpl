[[ $d := dict "a" 1 "b" "two" ]][[ $d ]] [[ $d.b ]] [[ dict ]] [[ dict "odd" ]] [[ dict 1 2 ]]
