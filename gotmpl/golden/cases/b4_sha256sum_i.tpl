[[ sha256sum .i ]]
