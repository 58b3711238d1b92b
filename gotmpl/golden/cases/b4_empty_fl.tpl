[[ empty .fl ]]
