[[ .a ]] [[ .b ]] [[ .c ]] [[ printf "%T %T %T" .a .b .c ]]
