[[ toStrings .fl ]]
