[[ define x ]][[ end ]]
