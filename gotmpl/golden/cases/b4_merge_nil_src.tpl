[[ merge .map .n ]]
