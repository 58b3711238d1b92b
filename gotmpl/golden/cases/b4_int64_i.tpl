[[ int64 .i ]]
