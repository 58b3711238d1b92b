[[ regexMatch "a" .nope ]]
