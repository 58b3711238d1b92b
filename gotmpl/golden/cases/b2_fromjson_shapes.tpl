[[ fromJson "[1,2]" ]] [[ fromJson "\"s\"" ]] [[ fromJson "3" ]] [[ fromJson "null" ]] [[ (fromJson "{\"a\":{\"b\":1}}").a.b ]]
