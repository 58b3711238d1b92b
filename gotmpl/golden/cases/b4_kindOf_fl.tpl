[[ kindOf .fl ]]
