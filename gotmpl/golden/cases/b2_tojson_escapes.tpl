[[ toJson "line\nbreak\t\"q\" \u2028 é <>&" ]] [[ toJson .m ]] [[ toJson 1.0 ]] [[ toJson 0.000001 ]] [[ toJson 0.0000001 ]] [[ toJson -0.5 ]]
