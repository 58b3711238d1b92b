[[ compact .n ]]
