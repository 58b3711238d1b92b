[[ nospace .nope ]]
