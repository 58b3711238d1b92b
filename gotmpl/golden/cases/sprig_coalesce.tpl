[[ coalesce .nope .empty .name ]] [[ coalesce 0 "" ]] [[ coalesce .zero .count ]]
