[[ env "HOME" ]]
