line 1
line 2
    [[ .name | printf "%s" | .x ]]
