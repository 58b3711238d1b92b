[[ append .n "x" ]]
