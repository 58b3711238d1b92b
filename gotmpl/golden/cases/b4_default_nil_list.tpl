[[ default (list "x") .n ]] [[ default "d" .l ]] [[ default "d" .m ]] [[ default "d" .i ]]
