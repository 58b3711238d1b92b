[[ int64 .l ]]
