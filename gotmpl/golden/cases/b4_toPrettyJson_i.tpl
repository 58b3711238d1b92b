[[ toPrettyJson .i ]]
