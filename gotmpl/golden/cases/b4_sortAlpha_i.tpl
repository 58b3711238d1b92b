[[ sortAlpha .i ]]
