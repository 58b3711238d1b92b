[[ div 1 .nope ]]
