[[ compact .s ]]
