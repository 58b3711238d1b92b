[[ println ]]|
