[[ if .nope ]]yes[[ else ]]no[[ end ]]
