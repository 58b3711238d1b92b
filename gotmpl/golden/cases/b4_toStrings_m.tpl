[[ toStrings .m ]]
