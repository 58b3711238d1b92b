# Only the apps that back up to MinIO may reach it through the mesh.
Kind = "service-intentions"
Name = "minio-minio"
Sources = [
  {
    Name   = "overseerr"
    Action = "allow"
  },
]
