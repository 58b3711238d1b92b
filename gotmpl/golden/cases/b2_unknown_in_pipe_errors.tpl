a
b
[[ .x | nofunc ]]
