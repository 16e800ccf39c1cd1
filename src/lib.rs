//! oomwatch: decode kernel OOM kills on Kubernetes nodes.

pub mod cli;
pub mod decode;
pub mod podref;
pub mod text;
