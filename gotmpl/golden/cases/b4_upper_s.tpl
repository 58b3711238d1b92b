[[ upper .s ]]
