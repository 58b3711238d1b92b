[[ until .fl ]]
