[[ len .m ]] [[ len true ]]
