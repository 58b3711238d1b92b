[[ break ]]
