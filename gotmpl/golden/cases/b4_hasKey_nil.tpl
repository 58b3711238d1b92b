[[ hasKey .n "a" ]]
