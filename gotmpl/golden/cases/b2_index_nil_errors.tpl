[[ index .nope 1 ]]
