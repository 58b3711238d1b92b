[[ trimAll "ab" "abxyzba" ]] [[ trimAll "" "  x " ]]| [[ trim "\t x \r\n" ]]|
