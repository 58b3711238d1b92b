[[ initial .i ]]
