[[ print
 "abc
" ]]
