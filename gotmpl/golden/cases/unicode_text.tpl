héllo [[ "wörld" | upper ]] [[ len "日本" ]] [[ printf "%5s|" "日本" ]] [[ trunc 3 "日本" ]]
