[[ b64enc "hello" ]] [[ b64dec "aGVsbG8=" ]] [[ sha256sum "abc" ]] [[ b64enc "" ]]
