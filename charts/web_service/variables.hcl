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

variable "count" {
  description = "How many instances to run."
  type        = number
  default     = 1
}

variable "image" {
  description = "The Docker image."
  type        = string
}

variable "args" {
  description = "Arguments to the image's entrypoint (none when empty)."
  type        = list(string)
  default     = []
}

variable "port" {
  description = "The port the service listens on inside its container."
  type        = number
}

variable "check_path" {
  description = "The HTTP path of the health check."
  type        = string
  default     = "/"
}

variable "connect" {
  description = "Join the Consul Connect service mesh (bridge networking, an Envoy sidecar)."
  type        = bool
  default     = true
}

variable "env" {
  description = "Environment variables of the task."
  type        = map(string)
  default     = {}
}

variable "resources" {
  description = "CPU (MHz) and memory (MB) of the task."
  type = object({
    cpu    = number
    memory = number
  })
  default = {
    cpu    = 100
    memory = 128
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
