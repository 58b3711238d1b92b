[[ required "x" .nope ]]
