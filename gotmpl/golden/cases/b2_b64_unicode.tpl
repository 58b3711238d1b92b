[[ b64enc "héllo" ]] [[ b64dec "aMOpbGxv" ]] [[ sha256sum "" ]]
