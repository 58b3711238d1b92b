[[ $d := dict "a" 1 ]][[ get $d "a" ]] [[ get $d "zz" ]]|[[ $_ := set $d "b" 2 ]][[ $d ]] [[ unset $d "a" ]] [[ hasKey $d "b" ]] [[ hasKey .m "nope" ]]
