[[ toString .l ]]
