[[ upper "a" "b" ]]
