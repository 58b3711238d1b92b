[[ $nope ]]
