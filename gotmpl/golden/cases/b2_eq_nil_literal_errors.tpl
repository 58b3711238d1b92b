[[ eq .nope nil ]]
