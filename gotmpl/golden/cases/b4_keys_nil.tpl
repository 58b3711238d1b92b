[[ keys .m ]] [[ keys .map .m ]]
