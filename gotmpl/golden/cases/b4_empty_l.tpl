[[ empty .l ]]
