[[ repeat 2 .nope ]]
