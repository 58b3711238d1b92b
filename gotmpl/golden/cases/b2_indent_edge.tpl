[[ indent 2 "a\n" ]]|[[ nindent 0 "x" ]]|[[ indent 3 "a\n\nb" ]]|
