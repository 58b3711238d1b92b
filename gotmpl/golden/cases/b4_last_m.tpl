[[ last .m ]]
