[[ uniq .i ]]
