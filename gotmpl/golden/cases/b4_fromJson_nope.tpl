[[ fromJson .nope ]]
