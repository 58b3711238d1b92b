[[ template .x ]]
