[[ and ]]
