[[ empty .m ]]
