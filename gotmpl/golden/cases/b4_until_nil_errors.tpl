[[ until .nope ]]
