//! Settings: drover.yaml plus the NOMAD_*/CONSUL_HTTP_*/VAULT_* environment, like HashiCorp's CLIs.
