[[ toString .s ]]
