[[ atoi .s ]]
