[[ toString .nope ]]
