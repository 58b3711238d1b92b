a
[[ nosuchfunc 1 ]]
