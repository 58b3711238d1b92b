[[ typeOf (add 1 2) ]] [[ kindOf (int64 3) ]] [[ typeOf (splitList "," "a") ]] [[ kindIs "int" (add 1 1) ]]
