before
[[ if not .token ]][[ fail "missing required variable token" ]][[ end ]]
