[[ add1 .i ]]
