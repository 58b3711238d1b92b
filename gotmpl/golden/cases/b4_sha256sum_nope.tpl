[[ sha256sum .nope ]]
