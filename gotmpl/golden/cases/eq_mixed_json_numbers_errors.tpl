[[ eq .a .b ]]
