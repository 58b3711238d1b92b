[[ typeOf .nope ]]
