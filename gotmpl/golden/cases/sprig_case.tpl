[[ upper .s ]] [[ lower .s ]] [[ title "hello wide world" ]] [[ title "o'neil is_here x-y" ]]
