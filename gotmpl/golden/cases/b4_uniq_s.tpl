[[ uniq .s ]]
