[[ initial .n ]]
