[[ ternary "y" "n" .t ]] [[ ternary "y" "n" false ]] [[ .fl | ternary 1 2 ]]
