[[ kindOf (list) ]] [[ kindOf (dict) ]] [[ kindOf 1.0 ]] [[ typeOf 1.0 ]] [[ kindOf (splitList "," "a") ]] [[ typeOf (dict) ]] [[ kindIs "invalid" nil ]]
