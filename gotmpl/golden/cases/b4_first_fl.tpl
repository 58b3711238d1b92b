[[ first .fl ]]
