[[ int "0x10" ]] [[ int "-5" ]] [[ int "1e3" ]] [[ int "3.5" ]] [[ int " 4" ]] [[ int64 2.9 ]] [[ int -2.9 ]] [[ float64 "abc" ]] [[ float64 .count ]] [[ float64 true ]] [[ int "010" ]]
