[[ kebabcase .s ]]
