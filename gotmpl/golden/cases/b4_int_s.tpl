[[ int .s ]]
