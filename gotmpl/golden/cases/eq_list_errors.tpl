[[ eq .list .list ]]
