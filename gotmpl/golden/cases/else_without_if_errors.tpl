x
[[ else ]]
