[[ indent 2 .nope ]]
