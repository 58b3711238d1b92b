[[ toJson .nope ]]
