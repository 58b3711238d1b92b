[[ add .nope 1 ]] [[ sub .n 1 ]] [[ mul .nope 2 ]] [[ max .nope ]] [[ min .n 3 ]]
