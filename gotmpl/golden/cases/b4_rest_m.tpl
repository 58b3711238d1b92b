[[ rest .m ]]
