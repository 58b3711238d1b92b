[[ typeOf .i ]]
