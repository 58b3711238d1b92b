[[ sortAlpha .m ]]
