[[ with .m ]][[ .a ]]-[[ .b ]][[ end ]] [[ with .nope ]]x[[ else ]]none[[ end ]]
