[[ has "a" .s ]]
