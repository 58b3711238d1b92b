[[/* never closed ]]
