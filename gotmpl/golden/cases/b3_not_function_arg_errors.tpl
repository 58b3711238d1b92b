[[ true 1 ]]
