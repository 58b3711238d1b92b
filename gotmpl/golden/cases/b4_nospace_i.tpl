[[ nospace .i ]]
