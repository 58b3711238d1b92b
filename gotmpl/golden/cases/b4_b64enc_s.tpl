[[ b64enc .s ]]
