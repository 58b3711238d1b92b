[[ get .nope "a" ]]
