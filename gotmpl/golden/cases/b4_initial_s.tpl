[[ initial .s ]]
