[[ regexFind "(" "x" ]]
