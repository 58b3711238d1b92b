[[ toPrettyJson .m ]]
[[ toPrettyJson .ports ]]
[[ toPrettyJson .emptylist ]] [[ toPrettyJson .emptymap ]] [[ toPrettyJson 1 ]]
