[[ nil ]]
