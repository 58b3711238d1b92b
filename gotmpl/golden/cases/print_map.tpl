[[ .m ]] [[ .emptymap ]]
