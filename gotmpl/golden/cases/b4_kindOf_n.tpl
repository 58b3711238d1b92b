[[ kindOf .n ]]
