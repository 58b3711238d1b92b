[[ toJson .s ]]
