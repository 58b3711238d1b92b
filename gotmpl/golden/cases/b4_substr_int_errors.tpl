[[ substr 0 1 .i ]]
