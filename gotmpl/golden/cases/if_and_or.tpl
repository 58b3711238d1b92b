[[ if and .t .count ]]1[[ end ]][[ if or .zero .empty ]]2[[ else ]]3[[ end ]] [[ and 1 0 2 ]] [[ or 0 "" "x" ]] [[ and 1 2 ]] [[ or 0 "" ]]
