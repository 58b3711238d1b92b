[[ range .emptylist ]]x[[ else ]]empty[[ end ]] [[ range .nope ]]x[[ else ]]nothing[[ end ]] [[ range .emptymap ]]x[[ else ]]nomap[[ end ]]
