[[ toPrettyJson .n ]]
