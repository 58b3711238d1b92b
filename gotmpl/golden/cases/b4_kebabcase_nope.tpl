[[ kebabcase .nope ]]
