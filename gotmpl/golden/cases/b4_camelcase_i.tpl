[[ camelcase .i ]]
