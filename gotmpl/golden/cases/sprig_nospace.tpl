[[ nospace " a b\tc\n d " ]]
