[[ splitList "," ",a," ]] [[ len (splitList "," ",a,") ]] [[ split "." "a.b" ]]
