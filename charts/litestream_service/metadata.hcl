app {
  url = "https://litestream.io"
}

pack {
  name        = "litestream_service"
  description = "A single-instance service whose SQLite database lives on the ephemeral disk, restored from and replicated to S3 (MinIO) by Litestream, with its config on a CSI volume, Vault credentials, Consul Connect and Traefik routing."
  version     = "0.1.0"
}
