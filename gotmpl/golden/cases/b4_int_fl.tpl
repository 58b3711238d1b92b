[[ int .fl ]]
