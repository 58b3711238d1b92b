[[ $x := fromJson "{\"a\": [1, 2.5, \"s\"], \"b\": {\"c\": true}}" ]][[ $x.a ]] [[ $x.b.c ]] [[ index $x.a 0 | typeOf ]] [[ fromJson "not json" ]]
