[[ .name | "x" ]]
