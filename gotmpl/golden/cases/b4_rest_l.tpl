[[ rest .l ]]
