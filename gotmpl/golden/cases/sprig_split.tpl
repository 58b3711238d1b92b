[[ $p := split ":" "a:b:c" ]][[ $p._0 ]] [[ $p._2 ]] [[ splitList "," "x,y,,z" ]] [[ splitList "," "" | len ]] [[ len (splitList "" "abc") ]]
