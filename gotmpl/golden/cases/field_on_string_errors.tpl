line1
  [[ .name.x ]]
