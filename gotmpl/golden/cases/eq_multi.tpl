[[ eq 1 2 3 1 ]] [[ eq "a" "b" ]] [[ eq .name "web" ]] [[ eq .count 3 ]] [[ eq .nope .nil ]] [[ ne 1 2 ]] [[ eq .f 1.5 ]]
