[[ trunc 5 .s ]]|[[ trunc -5 .s ]]|[[ trunc 100 .s ]]|[[ trunc 0 .s ]]
