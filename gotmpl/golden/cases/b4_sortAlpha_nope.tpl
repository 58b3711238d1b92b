[[ sortAlpha .nope ]]
