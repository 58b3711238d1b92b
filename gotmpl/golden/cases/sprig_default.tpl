[[ default "d" .nope ]] [[ default "d" .empty ]] [[ default "d" .name ]] [[ .nope | default "p" ]] [[ default 5 .zero ]] [[ default "x" .emptylist ]] [[ default "x" .fl ]] [[ default "only" ]]
