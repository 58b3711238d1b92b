[[ print if ]]
