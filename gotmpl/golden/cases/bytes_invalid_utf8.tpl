[[ trunc 2 "日本" ]]|[[ substr 0 1 "é" ]]
