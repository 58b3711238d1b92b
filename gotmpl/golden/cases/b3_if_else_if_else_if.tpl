[[ if false ]]1[[ else if false ]]2[[ else if true ]]3[[ else ]]4[[ end ]]
