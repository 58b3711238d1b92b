[[ int64 .s ]]
