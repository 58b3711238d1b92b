[[ append .name "x" ]]
