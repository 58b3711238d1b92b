[[ toStrings .i ]]
