[[ range $k, $v := .m ]][[ $k ]]=[[ $v ]];[[ end ]]
