[[ if len .emptylist ]]x[[ else ]]empty[[ end ]] [[ if .list | len ]]has[[ end ]]
