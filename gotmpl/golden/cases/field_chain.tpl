[[ .nested.x.y.z ]] [[ .m.c.d ]]
