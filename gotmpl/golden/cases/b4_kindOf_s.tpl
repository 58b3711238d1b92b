[[ kindOf .s ]]
