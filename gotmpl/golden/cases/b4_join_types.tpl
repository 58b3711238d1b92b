[[ join "," .n ]]|[[ join "," .m ]]|[[ join "," .i ]]|[[ join "," .map ]]
