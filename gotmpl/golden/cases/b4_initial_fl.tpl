[[ initial .fl ]]
