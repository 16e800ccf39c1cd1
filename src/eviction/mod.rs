//! Eviction watch: the kubelet's memory signals, and for each kill a verdict
//! on why the kubelet did not evict instead.

pub mod config;
pub mod signals;
pub mod verdict;
pub mod watch;
