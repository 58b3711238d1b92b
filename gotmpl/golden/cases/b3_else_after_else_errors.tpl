[[ if 1 ]]a[[ else ]]b[[ else ]]c[[ end ]]
