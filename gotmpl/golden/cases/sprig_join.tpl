[[ join "," .list ]] [[ join "-" .nums ]] [[ join "," .mixed ]] [[ join "," .name ]] [[ join "," .nope ]]|[[ .list | join " " ]]
