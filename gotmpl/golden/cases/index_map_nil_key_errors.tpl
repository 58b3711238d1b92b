[[ index .m nil ]]
