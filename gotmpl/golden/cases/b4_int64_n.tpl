[[ int64 .n ]]
