[[ toStrings .s ]]
