[[ index ]]
