//! oomwatch: decode kernel OOM kills on Kubernetes nodes.

pub mod attribution;
pub mod cgroup;
pub mod cli;
pub mod daemon;
pub mod decode;
pub mod event;
pub mod eviction;
pub mod kmsg;
pub mod metrics;
pub mod names;
pub mod podref;
pub mod server;
pub mod state;
pub mod text;
