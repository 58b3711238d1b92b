[[ trim .nope ]]
