[[ range $i, $v := .vals ]][[ $i ]]:[[ if $v ]]T[[ else ]]F[[ end ]] [[ end ]]
