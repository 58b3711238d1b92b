a
[[ template "nope" ]]
