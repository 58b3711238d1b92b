[[ b64dec .s ]]
