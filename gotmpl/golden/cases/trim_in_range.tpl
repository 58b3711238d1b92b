[[ range .list -]]
  - [[ . ]]
[[ end -]]
done
