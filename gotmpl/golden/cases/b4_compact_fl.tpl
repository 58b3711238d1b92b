[[ compact .fl ]]
