[[ range .nested ]][[ range . ]][[ if eq . "b" ]][[ break ]][[ end ]][[ . ]][[ end ]]|[[ end ]]
