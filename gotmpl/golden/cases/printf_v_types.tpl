[[ printf "%v %v %v %v %v %v" .m .nums 1.0 .nil .t .s ]]
