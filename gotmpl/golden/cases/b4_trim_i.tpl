[[ trim .i ]]
