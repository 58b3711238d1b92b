[[/* missingkey=error */]]
[[ .name ]] [[ .nope ]]
