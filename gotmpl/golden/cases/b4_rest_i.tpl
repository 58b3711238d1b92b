[[ rest .i ]]
