[[ add1 .m ]]
