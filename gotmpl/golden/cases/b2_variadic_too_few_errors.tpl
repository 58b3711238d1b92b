[[ default ]]
