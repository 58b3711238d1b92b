[[ (dict "a" (dict "b" "c")).a.b ]]
