[[ sortAlpha .n ]]
