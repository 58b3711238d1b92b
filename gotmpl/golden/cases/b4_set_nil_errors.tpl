[[ set .nope "a" 1 ]]
