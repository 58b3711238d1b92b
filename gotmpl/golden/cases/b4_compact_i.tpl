[[ compact .i ]]
