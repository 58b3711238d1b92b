[[ print 1) ]]
