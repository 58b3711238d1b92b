[[ (.m).a ]] [[ (index .ports 1).port ]]
