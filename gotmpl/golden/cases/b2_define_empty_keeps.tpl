[[ define "e" ]]   [[ end ]][[ template "e" ]]|
