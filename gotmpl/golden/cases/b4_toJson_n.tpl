[[ toJson .n ]]
