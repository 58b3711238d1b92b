[[/* missingkey=error */]][[ .a.b ]]
