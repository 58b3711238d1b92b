[[ len .m ]]
