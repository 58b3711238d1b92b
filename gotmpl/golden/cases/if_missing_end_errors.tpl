[[ if .t ]]
no end
