[[ trunc -100 "abc" ]]|[[ trunc -1 "abc" ]]|[[ trunc 3 "abc" ]]
