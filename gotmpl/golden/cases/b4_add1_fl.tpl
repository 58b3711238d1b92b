[[ add1 .fl ]]
