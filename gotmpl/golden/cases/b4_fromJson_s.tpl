[[ fromJson .s ]]
