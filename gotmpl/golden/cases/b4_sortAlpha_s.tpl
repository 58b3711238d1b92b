[[ sortAlpha .s ]]
