[[ trim .s ]]
