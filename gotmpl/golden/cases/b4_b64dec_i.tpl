[[ b64dec .i ]]
