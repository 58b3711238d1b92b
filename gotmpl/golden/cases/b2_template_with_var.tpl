[[ define "p" ]]<[[ . ]]>[[ end ]][[ $v := "val" ]][[ template "p" $v ]] [[ range .list ]][[ template "p" . ]][[ end ]]
