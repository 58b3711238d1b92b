[[ range $v := .m ]][[ $v ]],[[ end ]] [[ range .m ]][[ . ]];[[ end ]]
