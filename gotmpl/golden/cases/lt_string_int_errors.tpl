[[ lt .name 1 ]]
