[[ snakecase .s ]]
