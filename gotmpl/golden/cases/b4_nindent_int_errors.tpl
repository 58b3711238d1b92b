[[ nindent 2 .i ]]
