[[ initial .l ]]
