# HTTP protocol so the mesh can apply L7 timeouts to long uploads.
Kind                  = "service-defaults"
Name                  = "minio-minio"
Protocol              = "http"
LocalRequestTimeoutMs = 300000
