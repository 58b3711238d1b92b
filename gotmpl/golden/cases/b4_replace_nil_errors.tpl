[[ replace "a" "b" .nope ]]
