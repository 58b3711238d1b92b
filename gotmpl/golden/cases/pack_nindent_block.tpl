meta {[[ range $k, $v := .meta ]][[ printf "%s = %q" $k $v | nindent 2 ]][[ end ]]
}
