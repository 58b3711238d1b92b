[[ kindOf .nope ]]
