[[ (print 1 ]]
