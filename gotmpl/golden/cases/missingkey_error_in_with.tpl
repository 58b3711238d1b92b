[[/* missingkey=error */]][[ with .nope ]]x[[ end ]]
