[[ first .list ]] [[ last .list ]] [[ rest .list ]] [[ initial .list ]] [[ first .emptylist ]] [[ rest .emptylist ]] [[ last .emptylist ]] [[ initial .emptylist ]]
