[[ sortAlpha (list "b" "C" "a" "10" "9") ]] [[ sortAlpha .nums ]] [[ sortAlpha .name ]] [[ keys .m | sortAlpha ]]
