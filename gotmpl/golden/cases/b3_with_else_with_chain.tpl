[[ with false ]]a[[ else with 0 ]]b[[ else with "" ]]c[[ else ]]d[[ end ]]
