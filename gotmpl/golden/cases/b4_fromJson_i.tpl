[[ fromJson .i ]]
