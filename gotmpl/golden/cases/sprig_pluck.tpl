[[ pluck "name" (index .ports 0) (index .ports 1) (dict "x" 1) ]]
