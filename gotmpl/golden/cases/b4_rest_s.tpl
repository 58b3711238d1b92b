[[ rest .s ]]
