[[ typeOf .n ]]
