[[ html 1 "<" ]] [[ urlquery .list ]] [[ js 5 ]]
