[[ "abc ]]
