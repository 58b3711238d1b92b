[[ sortAlpha .map ]] [[ sortAlpha .n ]]
