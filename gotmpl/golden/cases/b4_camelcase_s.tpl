[[ camelcase .s ]]
