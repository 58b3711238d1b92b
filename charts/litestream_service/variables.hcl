variable "job_name" {
  description = "The Nomad job, group, task and Consul service name (defaults to the pack name)."
  type        = string
  default     = ""
}

variable "datacenters" {
  description = "Datacenters the job may run in."
  type        = list(string)
  default     = ["dc1"]
}

variable "image" {
  description = "The application's Docker image."
  type        = string
}

variable "port" {
  description = "The port the application listens on inside its container (also the Consul service port)."
  type        = number
}

variable "config_volume" {
  description = "The CSI volume holding the application's config (its id; mounted read-write)."
  type        = string
}

variable "config_mount" {
  description = "Where the config volume is mounted in the application task."
  type        = string
  default     = "/app/config"
}

variable "db_mount" {
  description = "Where the application expects its database folder (bound to the ephemeral disk's /alloc/data/db)."
  type        = string
  default     = "/app/config/db"
}

variable "db_file" {
  description = "The SQLite file name inside the database folder."
  type        = string
  default     = "db.sqlite3"
}

variable "ephemeral_disk_mb" {
  description = "Size of the sticky, migrating ephemeral disk that holds the database (MB)."
  type        = number
  default     = 200
}

variable "bucket" {
  description = "The S3 bucket Litestream replicates to."
  type        = string
}

variable "s3_endpoint" {
  description = "The S3 endpoint, reached through the service mesh."
  type        = string
  default     = "http://minio-minio.virtual.consul"
}

variable "s3_health_url" {
  description = "A URL the restore task waits for before restoring (the S3 endpoint's liveness)."
  type        = string
  default     = "http://minio-minio.virtual.consul/minio/health/live"
}

variable "secret_path" {
  description = "The Vault KV path (consul-template's secret path) holding MINIO_ACCESS_KEY and MINIO_SECRET_KEY."
  type        = string
}

variable "litestream_image" {
  description = "The Litestream image for the restore and replicate tasks."
  type        = string
  default     = "litestream/litestream:0.5"
}

variable "check_path" {
  description = "The HTTP path of the service's health check."
  type        = string
  default     = "/"
}

variable "env" {
  description = "Environment variables of the application task."
  type        = map(string)
  default     = {}
}

variable "resources" {
  description = "CPU (MHz) and memory (MB) of the application task."
  type = object({
    cpu        = number
    memory     = number
    memory_max = number
  })
  default = {
    cpu        = 200
    memory     = 256
    memory_max = 512
  }
}

variable "restore_resources" {
  description = "CPU (MHz) and memory (MB) of the Litestream restore task."
  type = object({
    cpu        = number
    memory     = number
    memory_max = number
  })
  default = {
    cpu        = 100
    memory     = 256
    memory_max = 512
  }
}

variable "replicate_resources" {
  description = "CPU (MHz) and memory (MB) of the Litestream replicate sidecar."
  type = object({
    cpu        = number
    memory     = number
    memory_max = number
  })
  default = {
    cpu        = 100
    memory     = 128
    memory_max = 256
  }
}

variable "traefik_host" {
  description = "The host name Traefik routes to the service (no route when empty)."
  type        = string
  default     = ""
}

variable "traefik_entrypoint" {
  description = "The Traefik entrypoint of the route."
  type        = string
  default     = "websecure"
}
