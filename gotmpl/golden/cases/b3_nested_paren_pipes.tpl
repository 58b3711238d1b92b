[[ ((print "a") | printf "%s-%s" "b") ]]
