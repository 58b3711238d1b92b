[[ int64 .fl ]]
