[[ printf
  "%s-%s"
  .name
  .name ]]
