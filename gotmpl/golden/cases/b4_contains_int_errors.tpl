[[ contains "a" .i ]]
