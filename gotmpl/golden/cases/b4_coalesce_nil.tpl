[[ coalesce .nope .n .l .m .s ]]
