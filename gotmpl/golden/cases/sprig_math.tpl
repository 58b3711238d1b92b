[[ add 1 2 3 ]] [[ add1 .count ]] [[ sub 10 3 ]] [[ mul 2 3 4 ]] [[ div 10 3 ]] [[ mod 10 3 ]] [[ max 1 5 3 ]] [[ min 4 2 8 ]] [[ add "2" 1.9 ]] [[ add ]] [[ sub .neg 1 ]]
