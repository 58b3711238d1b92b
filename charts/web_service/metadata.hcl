app {
  url = "https://developer.hashicorp.com/nomad/docs/job-specification/service"
}

pack {
  name        = "web_service"
  description = "A stateless HTTP service: one Docker task, a Consul service with an HTTP check, optionally in the Consul Connect mesh and routed by Traefik."
  version     = "0.1.0"
}
