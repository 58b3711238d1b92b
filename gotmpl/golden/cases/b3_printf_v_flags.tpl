[[ printf "%5v|%-5v|%05v" 1 "a" 42 ]]
