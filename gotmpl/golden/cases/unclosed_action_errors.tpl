text [[ .x 
