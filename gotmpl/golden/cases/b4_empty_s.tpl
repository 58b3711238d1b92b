[[ empty .s ]]
