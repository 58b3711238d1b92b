[[ snakecase .nope ]]
