[[ with .m ]][[ $.name ]] [[ .a ]][[ end ]]
