a
[[ if
  .x
