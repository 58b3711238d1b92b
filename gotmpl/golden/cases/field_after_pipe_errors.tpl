[[ "x" | .name ]]
