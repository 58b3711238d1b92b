[[ contains "ell" .s ]] [[ hasPrefix "Hell" .s ]] [[ hasSuffix "x" .s ]] [[ .name | hasPrefix "w" ]]
