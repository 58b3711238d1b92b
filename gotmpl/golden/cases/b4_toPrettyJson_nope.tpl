[[ toPrettyJson .nope ]]
