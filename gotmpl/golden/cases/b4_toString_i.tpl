[[ toString .i ]]
