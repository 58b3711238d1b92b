[[ empty .nope ]] [[ empty 0 ]] [[ empty .list ]] [[ empty .emptymap ]] [[ empty "" ]] [[ empty .f ]] [[ empty 0.0 ]] [[ empty false ]]
