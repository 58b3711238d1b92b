[[ .x | default .y | default "z" ]]
