[[ index .list 1 ]] [[ index .m "a" ]] [[ index .m "c" "d" ]] [[ index .ports 0 "port" ]] [[ index .m "nope" ]] [[ index .s 0 ]]
