[[ printf "%t %t" 1 true ]]
