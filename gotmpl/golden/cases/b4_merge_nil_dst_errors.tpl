[[ merge .nope .map ]]
