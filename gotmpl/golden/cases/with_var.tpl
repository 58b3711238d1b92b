[[ with $x := .job.meta ]][[ $x.owner ]] [[ .owner ]][[ end ]]
