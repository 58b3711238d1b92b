[[ (upper "x").y ]]
