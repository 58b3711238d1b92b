[[ slice .n ]]
