[[ coalesce ]] [[ coalesce nil "" 0 ]] [[ coalesce (list) "x" ]]
