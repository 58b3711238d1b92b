# Large objects take a while: give requests five minutes.
Kind           = "service-resolver"
Name           = "minio-minio"
RequestTimeout = "300s"
ConnectTimeout = "30s"
