[[ typeOf .m ]]
