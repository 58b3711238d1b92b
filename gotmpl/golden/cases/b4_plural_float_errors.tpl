[[ plural "a" "b" .fl ]]
