[[ snakecase .i ]]
