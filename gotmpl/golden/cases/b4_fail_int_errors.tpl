[[ fail 3 ]]
