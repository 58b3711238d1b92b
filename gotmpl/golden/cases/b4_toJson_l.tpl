[[ toJson .l ]]
