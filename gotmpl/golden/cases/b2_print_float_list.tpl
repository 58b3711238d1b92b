[[ .fl ]] [[ printf "%v" .fl ]] [[ toJson .fl ]]
