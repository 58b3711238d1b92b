[[ toJson .m ]]
