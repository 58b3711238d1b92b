[[ rest .fl ]]
