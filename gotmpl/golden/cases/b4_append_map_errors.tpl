[[ append .m "x" ]]
