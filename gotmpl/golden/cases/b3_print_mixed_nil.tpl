[[ print nil nil ]] [[ print 1 nil 2 ]] [[ print "a" nil ]]
