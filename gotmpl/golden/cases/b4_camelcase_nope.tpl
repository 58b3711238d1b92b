[[ camelcase .nope ]]
