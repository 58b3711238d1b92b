[[ toString .m ]]
