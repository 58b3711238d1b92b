[[ last .s ]]
