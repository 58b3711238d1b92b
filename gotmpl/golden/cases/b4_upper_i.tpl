[[ upper .i ]]
