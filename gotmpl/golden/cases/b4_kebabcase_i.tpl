[[ kebabcase .i ]]
