[[ eq "a" .nope ]] [[ eq .nope .nope ]] [[ ne .name .nope ]]
