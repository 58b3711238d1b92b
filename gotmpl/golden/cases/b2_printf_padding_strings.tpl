[[ printf "[%10s][%-10s][%.2s][%10.3s]" "right" "left" "trunc" "abcdef" ]]
