[[ typeOf .l ]]
