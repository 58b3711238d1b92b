[[ title .s ]]
