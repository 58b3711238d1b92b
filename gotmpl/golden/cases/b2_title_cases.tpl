[[ title "hELLO wORLD" ]] [[ title "a-b c.d e_f" ]] [[ title "" ]]|[[ upper "straße" ]] [[ lower "ÀB" ]]
