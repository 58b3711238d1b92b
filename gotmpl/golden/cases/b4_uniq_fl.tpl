[[ uniq .fl ]]
