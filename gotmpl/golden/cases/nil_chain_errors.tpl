[[ nil.x ]]
