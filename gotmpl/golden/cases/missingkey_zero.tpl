[[/* missingkey=zero */]][[ .nope ]]
