[[ title .i ]]
