[[ if .t ]]a[[ else with .m ]][[ .a ]][[ end ]]
