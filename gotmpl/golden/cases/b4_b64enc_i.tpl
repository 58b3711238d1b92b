[[ b64enc .i ]]
