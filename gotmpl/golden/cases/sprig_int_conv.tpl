[[ int "42" ]] [[ int 3.9 ]] [[ int .nope ]] [[ int "abc" ]] [[ int64 "7" ]] [[ float64 "1.5" ]] [[ float64 3 ]] [[ atoi "12" ]] [[ atoi "x" ]] [[ int true ]] [[ int "3.0" ]]
