[[ not .t ]] [[ not 0 ]] [[ not .list ]] [[ not .nope ]]
