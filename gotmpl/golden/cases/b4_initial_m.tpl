[[ initial .m ]]
