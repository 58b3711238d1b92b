[[ end ]]
