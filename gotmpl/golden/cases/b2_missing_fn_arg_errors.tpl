[[ upper ]]
