[[ $x := 5 ]]after [[ $x ]]
