[[ regexReplaceAll "(a)(b)" "abab" "$2$1" ]] [[ regexReplaceAll "(a)" "aa" "$1W" ]] [[ regexMatch "(" "x" ]] [[ regexFind "a+" "baaac" ]]
