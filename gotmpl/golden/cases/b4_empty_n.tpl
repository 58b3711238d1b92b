[[ empty .n ]]
