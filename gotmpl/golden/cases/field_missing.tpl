[[ .nope ]]|[[ .nope.deeper ]]
