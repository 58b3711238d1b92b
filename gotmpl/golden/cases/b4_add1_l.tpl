[[ add1 .l ]]
