[[ toString .n ]]
