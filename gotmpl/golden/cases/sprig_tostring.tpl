[[ toString 5 ]] [[ toString .f ]] [[ toString .list ]] [[ toString .nope ]] [[ toStrings .nums ]] [[ toStrings .mixed ]] [[ toString true ]] [[ toString .m ]]
