[[ printf "%d|%s|%v|%.1f|%5.2f|%-8v|" 1e3 5 .f .f 3.14159 .name ]]
