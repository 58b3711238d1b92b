[[ with .nope ]]a[[ else with .name ]]b=[[ . ]][[ else ]]c[[ end ]]
