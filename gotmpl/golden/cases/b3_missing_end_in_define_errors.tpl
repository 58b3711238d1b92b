[[ define "x" ]]
body
