[[ first .n ]]
