[[ uniq .l ]]
