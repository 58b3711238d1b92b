[[ concat .list .n ]]
