[[ .list ]] [[ .nums ]] [[ .emptylist ]] [[ .mixed ]]
