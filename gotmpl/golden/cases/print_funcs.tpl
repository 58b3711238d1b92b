[[ print "a" 1 2 "b" "c" 3.5 nil ]]|[[ println 1 "x" ]]|[[ print .list .m ]]
