[[ uniq .m ]]
