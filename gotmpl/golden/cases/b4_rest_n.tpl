[[ rest .n ]]
