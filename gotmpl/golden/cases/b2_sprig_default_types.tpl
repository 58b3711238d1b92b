[[ default (list 1) .emptylist ]] [[ default (dict "a" 1) .nope ]] [[ default nil .nope ]] [[ default 0 .count ]]
