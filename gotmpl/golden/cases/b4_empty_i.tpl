[[ empty .i ]]
