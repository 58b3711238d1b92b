[[ expandenv "$HOME" ]]
