[[ .héllo ]] [[ .u | upper ]] [[ len .u ]] [[ title .u ]]
