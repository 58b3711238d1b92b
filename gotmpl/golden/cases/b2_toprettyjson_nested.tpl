[[ toPrettyJson (dict "a" (list 1 (dict "b" nil)) "c" (dict)) ]]
