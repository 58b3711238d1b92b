[[ eq .count "3" ]]
