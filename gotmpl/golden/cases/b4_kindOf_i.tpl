[[ kindOf .i ]]
