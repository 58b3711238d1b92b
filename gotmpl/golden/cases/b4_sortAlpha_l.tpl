[[ sortAlpha .l ]]
