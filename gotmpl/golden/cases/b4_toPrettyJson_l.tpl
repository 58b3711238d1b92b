[[ toPrettyJson .l ]]
