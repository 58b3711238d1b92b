[[ toStrings .n ]]
