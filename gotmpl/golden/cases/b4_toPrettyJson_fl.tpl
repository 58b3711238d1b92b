[[ toPrettyJson .fl ]]
