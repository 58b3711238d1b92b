[[ compact .mixed ]] [[ compact (list 0 "" "a" nil false 1) ]] [[ concat .list .nums ]] [[ concat .list (list "x") .emptylist ]]
