[[ eq 1 1 | ternary "yes" "no" ]] [[ .emptylist | empty | ternary "e" "ne" ]]
