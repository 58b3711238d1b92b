[[ compact .m ]]
