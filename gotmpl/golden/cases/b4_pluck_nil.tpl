[[ pluck "k" .map .m ]]
