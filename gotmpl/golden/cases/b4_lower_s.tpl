[[ lower .s ]]
