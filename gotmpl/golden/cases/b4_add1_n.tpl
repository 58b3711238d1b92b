[[ add1 .n ]]
