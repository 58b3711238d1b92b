[[ lower .i ]]
