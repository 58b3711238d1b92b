[[ toPrettyJson .s ]]
