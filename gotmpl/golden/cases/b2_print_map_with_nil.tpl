[[ .m ]] [[ .m.n ]] [[ index .m "n" ]] [[ printf "%v" .m.n ]]
