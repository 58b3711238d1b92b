# Traefik reaches Overseerr through the mesh (traefik.consulcatalog.connect=true); nothing else may.
# Overseerr's own access to MinIO is MinIO's entry (apps/minio/minio-intentions.hcl): Consul keeps
# one service-intentions entry per destination, so the destination's app owns it.
Kind = "service-intentions"
Name = "overseerr"
Sources = [
  {
    Name   = "traefik"
    Action = "allow"
  },
]
