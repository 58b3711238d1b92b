[[ keys .job.meta ]] [[ values .job.meta ]] [[ len (keys .m) ]]
