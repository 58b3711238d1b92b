[[ until -3 ]] [[ len (until 10) ]]
