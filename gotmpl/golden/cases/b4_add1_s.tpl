[[ add1 .s ]]
