[[ quote .nope .n .s .i ]] [[ squote .nope .s ]]
