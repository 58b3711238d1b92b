[[ b64enc .nope ]]
