[[ printf "%v|%s" .nope .nope ]] [[ print .nope ]] [[ len (list .nope) ]]
