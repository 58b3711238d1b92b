[[ quote .nested ]] [[ quote .m ]] [[ squote .list ]] [[ quote "" ]]
