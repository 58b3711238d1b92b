[[ substr 0 5 .s ]]|[[ substr 7 100 .s ]]|[[ substr -1 3 .s ]]|[[ substr 2 -1 "abcdef" ]]
