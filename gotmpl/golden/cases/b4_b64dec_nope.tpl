[[ b64dec .nope ]]
