[[ first .s ]]
