[[ toJson .fl ]]
