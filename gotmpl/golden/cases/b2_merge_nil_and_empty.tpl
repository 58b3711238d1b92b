[[ merge (dict "a" "") (dict "a" "x" "b" 0) ]] [[ mergeOverwrite (dict "a" "x") (dict "a" "") ]] [[ mergeOverwrite (dict "a" "x") (dict "a" "y") ]]
