[[ sortAlpha .fl ]]
