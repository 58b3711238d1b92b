[[ substr 5 2 "abcdef" ]]
