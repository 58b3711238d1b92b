[[ uniq .n ]]
