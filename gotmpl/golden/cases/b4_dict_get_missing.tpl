[[ get .map "zz" | empty ]] [[ get .map "k" ]]
