[[ define "v" ]][[ $ ]][[ end ]][[ $x := 1 ]][[ template "v" .count ]]
