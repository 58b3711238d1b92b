//! drover keeps a Nomad/Consul/Vault cluster and its S3 store equal to a Git repository.
//!
//! The data flows source → desired → live → plan → apply → health → report:
//! a [`source::Revision`] (a commit's tree) is loaded into [`desired::App`]s, compared against the
//! [`live::LiveStore`] by a pure [`plan`], executed by [`apply`], assessed by [`health`] and
//! published as an `AppStatus`. Start reading at `controller/reconcile.rs`.
//!
//! [`devstack`] is the embedded Nomad/Consul/Vault API server used by tests and `drover demo`;
//! drover reaches it only over HTTP, through the same [`providers`] it uses for a real cluster.

pub mod apply;
pub mod config;
pub mod controller;
pub mod demo;
pub mod desired;
pub mod devstack;
pub mod health;
pub mod live;
pub mod plan;
pub mod providers;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod web;
