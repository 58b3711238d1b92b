[[ replace " " "-" "a b c" ]] [[ "a.b.c" | replace "." "_" ]] [[ replace "" "-" "ab" ]]
