[[ join "," .nested ]] [[ join "," (list 1 nil "x") ]] [[ join "" .list ]]
