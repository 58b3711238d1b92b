[[ without .n "a" ]]
