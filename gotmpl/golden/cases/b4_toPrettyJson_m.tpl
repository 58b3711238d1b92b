[[ toPrettyJson .m ]]
