[[ first .l ]]
