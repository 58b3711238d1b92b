[[ trim "  x y \n" ]]|[[ trimAll "$" "$$5.00$" ]]|[[ trimPrefix "v" "v1.2" ]]|[[ trimSuffix ".tpl" "a.nomad.tpl" ]]|[[ trimPrefix "x" "abc" ]]
