[[/* missingkey=zero */]][[ .a.nope ]]|[[ printf "%v" .nope ]]|[[ .nope | default "d" ]]|[[ .nope.deeper ]]
