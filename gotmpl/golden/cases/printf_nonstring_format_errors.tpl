[[ printf 5 ]]
