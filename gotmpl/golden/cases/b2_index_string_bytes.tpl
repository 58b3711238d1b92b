[[ index "abc" 1 ]] [[ index .nested 1 0 ]] [[ index .m "zz" ]]
