x:[[ "a\nb" | indent 4 ]]
y:[[ "a\nb" | nindent 2 ]]
z:[[ indent 2 "" ]]|
