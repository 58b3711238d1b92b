[[ typeOf .s ]]
