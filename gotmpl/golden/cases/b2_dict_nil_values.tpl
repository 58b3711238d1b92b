[[ dict "a" nil "b" (list) ]] [[ get (dict "a" nil) "a" ]]|[[ hasKey (dict "a" nil) "a" ]]
