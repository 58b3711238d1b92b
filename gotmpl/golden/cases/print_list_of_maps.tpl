[[ .ports ]]
