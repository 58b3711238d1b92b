[[ compact .l ]]
