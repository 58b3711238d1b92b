[[ $d := dict "inner" (dict) ]][[ $_ := set $d.inner "k" "v" ]][[ $d ]]
