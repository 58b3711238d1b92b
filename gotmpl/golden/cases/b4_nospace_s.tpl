[[ nospace .s ]]
