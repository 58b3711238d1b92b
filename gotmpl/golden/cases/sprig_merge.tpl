[[ $a := dict "a" 1 "n" (dict "x" 1) ]][[ $b := dict "a" 2 "b" 3 "n" (dict "y" 2 "x" 9) ]][[ merge (dict) $a $b ]] [[ mergeOverwrite (dict) $a $b ]]
