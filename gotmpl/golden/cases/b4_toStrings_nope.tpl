[[ toStrings .nope ]]
