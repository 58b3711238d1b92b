[[ toStrings .l ]]
