[[ toJson .i ]]
