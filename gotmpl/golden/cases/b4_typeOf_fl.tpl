[[ typeOf .fl ]]
