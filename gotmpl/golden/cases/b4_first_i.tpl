[[ first .i ]]
