[[ and .fl (fail "not evaluated") ]] [[ or .t (fail "nope") ]]
