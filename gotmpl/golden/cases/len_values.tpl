[[ len .list ]] [[ len .s ]] [[ len .m ]] [[ len "héllo" ]]
