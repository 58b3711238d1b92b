[[ lt true false ]]
