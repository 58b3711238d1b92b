[[ kindOf .l ]]
