[[ toString .fl ]]
