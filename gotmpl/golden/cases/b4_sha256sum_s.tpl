[[ sha256sum .s ]]
