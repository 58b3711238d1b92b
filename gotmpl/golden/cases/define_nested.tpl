[[ define "a" ]]A[[ template "b" . ]][[ end ]][[ define "b" ]]B[[ .count ]][[ end ]][[ template "a" . ]]
