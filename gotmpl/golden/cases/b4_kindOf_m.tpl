[[ kindOf .m ]]
