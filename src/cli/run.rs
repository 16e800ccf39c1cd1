//! `oomwatch run`: the DaemonSet's process.

use crate::cgroup::Memory;
use crate::daemon::{Config, Processor};
use crate::eviction::signals::Sampler;
use crate::eviction::watch::Watch;
use crate::kmsg::{Follower, Item};
use crate::metrics::{Extra, Metrics, Shared};
use crate::names::Resolver;
use crate::server::{self, App};
use crate::state::{Loaded, Store};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Kernel log: /dev/kmsg, or a captured raw kmsg file to replay (exits at its end)
    #[arg(long, default_value = "/dev/kmsg")]
    pub kmsg: PathBuf,
    /// The host's /proc
    #[arg(long, default_value = "/proc")]
    pub proc: PathBuf,
    /// The host's cgroup root
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// The kubelet's pod log directory (names namespace, pod, container)
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_logs_dir: PathBuf,
    /// The kubelet's container log symlinks (names containers by id)
    #[arg(long, default_value = "/var/log/containers")]
    pub container_logs_dir: PathBuf,
    /// Runtime state directories with per-container config.json (repeatable)
    #[arg(long = "runtime-state-dir", default_values = ["/run/containerd/io.containerd.runtime.v2.task/k8s.io", "/run/containers/storage/overlay-containers"])]
    pub runtime_state_dirs: Vec<PathBuf>,
    /// Where the restart state is kept (a hostPath)
    #[arg(long, default_value = "/var/lib/oomwatch")]
    pub state_dir: PathBuf,
    /// Address for /metrics, /healthz and /
    #[arg(long, default_value = "0.0.0.0:9789")]
    pub listen: SocketAddr,
    /// Log line format
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Remove metric series of pods gone for longer than this (s, m, h, d)
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub forget_after: Duration,
    /// Node name for the log lines
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Unix time of boot (default: btime from <proc>/stat)
    #[arg(long)]
    pub boot_time: Option<f64>,
    /// Write the final /metrics text here when exiting
    #[arg(long)]
    pub write_metrics: Option<PathBuf>,
    /// The kubelet's config file (eviction thresholds, reserved memory)
    #[arg(long, default_value = "/var/lib/kubelet/config.yaml")]
    pub kubelet_config: PathBuf,
    /// How often to sample the eviction signals (s, m, h)
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sample_interval: Duration,
    /// Override the memory.available hard eviction threshold (100Mi, 5%)
    #[arg(long)]
    pub eviction_hard: Option<String>,
    /// Override the memory.available soft eviction threshold
    #[arg(long)]
    pub eviction_soft: Option<String>,
    /// Override kubeReserved memory
    #[arg(long)]
    pub kube_reserved_memory: Option<String>,
    /// Override systemReserved memory
    #[arg(long)]
    pub system_reserved_memory: Option<String>,
    /// The kubepods cgroup, when not /kubepods.slice or /kubepods (nested setups)
    #[arg(long)]
    pub kubepods_cgroup: Option<String>,
}

/// The kubelet's settings, with the flags' overrides.
pub fn eviction(o: &Opts) -> Result<crate::eviction::config::Eviction> {
    use crate::eviction::config::{load, parse_quantity, Threshold};
    let mut e = load(&o.kubelet_config)?;
    if let Some(v) = &o.eviction_hard {
        e.hard = Some(parse_quantity("--eviction-hard", v)?);
        e.source = format!("{} and flags", e.source);
    }
    if let Some(v) = &o.eviction_soft {
        e.soft = Some(parse_quantity("--eviction-soft", v)?);
    }
    let bytes = |flag: &str, v: &str| match parse_quantity(flag, v) {
        Ok(Threshold::Bytes(b)) => Ok(b),
        _ => Err(anyhow::anyhow!(
            "{flag}: '{v}' is not a quantity of bytes (like 256Mi)"
        )),
    };
    if let Some(v) = &o.kube_reserved_memory {
        e.kube_reserved = bytes("--kube-reserved-memory", v)?;
    }
    if let Some(v) = &o.system_reserved_memory {
        e.system_reserved = bytes("--system-reserved-memory", v)?;
    }
    Ok(e)
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 500ms, 90s, 30m, 1h, 7d"))?;
    let ms = match unit {
        "ms" => 1,
        "s" | "" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{s}': unit must be ms, s, m, h or d")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `btime` of /proc/stat.
pub fn boot_time(proc: &Path) -> Option<f64> {
    let s = std::fs::read_to_string(proc.join("stat")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn uptime(proc: &Path) -> Option<f64> {
    std::fs::read_to_string(proc.join("uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Everything the daemon needs, opened and reported before the loop starts.
pub struct Setup {
    pub processor: Processor<std::io::Stdout>,
    pub counters: Shared,
    pub replay: bool,
    pub watch: Watch,
}

fn min_free_kbytes(proc: &Path) -> Option<u64> {
    std::fs::read_to_string(proc.join("sys/vm/min_free_kbytes"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Open everything, say what could not be opened, restore state.
pub fn setup(o: &Opts) -> Result<Setup> {
    let replay = std::fs::metadata(&o.kmsg)
        .map(|m| m.is_file())
        .unwrap_or(false);
    let boot_id = std::fs::read_to_string(o.proc.join("sys/kernel/random/boot_id"))
        .map(|s| s.trim().to_string());
    let boot_id = match boot_id {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot read the boot id from {}: {e}; restart state is kept but not tied to a boot", o.proc.display());
            "unknown".into()
        }
    };
    let store =
        Store::new(&o.state_dir).with_context(|| format!("state dir {}", o.state_dir.display()))?;
    let (counters, resume) = match store.load(&boot_id) {
        Loaded::Resumed(c) => {
            tracing::info!(
                "resuming: same boot, {} kills counted so far, records up to #{} handled",
                c.total_kills(),
                c.handled_seq.map_or("-".into(), |s| s.to_string())
            );
            let h = c.handled_seq;
            (c, h)
        }
        Loaded::Fresh(c, why) => {
            tracing::info!("starting fresh: {why}");
            (c, None)
        }
    };
    let mem = Memory::detect(&o.cgroup_root);
    match &mem {
        Some(m) => tracing::info!("memory cgroups: {:?} at {}", m.version, m.base.display()),
        None => tracing::warn!("no memory cgroup hierarchy under {}: kills whose report the kernel rate-limited cannot be attributed", o.cgroup_root.display()),
    }
    let resolver = Resolver::new(
        o.pod_logs_dir.clone(),
        o.container_logs_dir.clone(),
        o.runtime_state_dirs.clone(),
    );
    for (path, ok) in resolver.sources() {
        if !ok {
            tracing::warn!(
                "{} is not mounted: names from it will be unknown",
                path.display()
            );
        }
    }
    let boot_time = o
        .boot_time
        .or_else(|| boot_time(&o.proc))
        .unwrap_or_else(|| {
            tracing::warn!(
                "cannot read btime from {}/stat: kill timestamps count from 1970",
                o.proc.display()
            );
            0.0
        });
    let counters: Shared = Arc::new(Mutex::new(counters));
    let cfg = Config {
        node: o.node_name.clone(),
        json: o.log_format == LogFormat::Json,
        resume_seq: resume,
        start_uptime: if replay { None } else { uptime(&o.proc) },
        boot_time,
        live: !replay,
        runtime_dirs: o.runtime_state_dirs.clone(),
    };
    let ev = eviction(o)?;
    let reserved = ev.kube_reserved + ev.system_reserved;
    let watch = Watch::new(
        Sampler::new(&o.proc, mem.clone(), reserved, o.kubepods_cgroup.as_deref()),
        ev,
        min_free_kbytes(&o.proc),
    );
    let e = watch.eviction();
    tracing::info!(
        "eviction settings from {}: memory.available hard {}, soft {}, reserved {} (kube) + {} (system); kubepods cgroup {}",
        e.source,
        e.hard.map_or("none".into(), |t| format!("{t:?}")),
        e.soft.map_or("none".into(), |t| format!("{t:?}")),
        crate::text::mib(e.kube_reserved),
        crate::text::mib(e.system_reserved),
        watch.kubepods().map_or("not found".into(), |p| p.display().to_string())
    );
    let mut processor = Processor::new(
        cfg,
        counters.clone(),
        Some(store),
        resolver,
        mem,
        std::io::stdout(),
    );
    if !replay {
        processor.judge = Some(watch.judge());
    }
    processor.tick(now(), o.forget_after.as_secs_f64());
    Ok(Setup {
        processor,
        counters,
        replay,
        watch,
    })
}

pub fn run(o: Opts) -> Result<()> {
    tracing::info!(
        "oomwatch {} starting: kmsg={} proc={} cgroup-root={} pod-logs={} container-logs={} state={} listen={} forget-after={}s node={}",
        env!("CARGO_PKG_VERSION"),
        o.kmsg.display(),
        o.proc.display(),
        o.cgroup_root.display(),
        o.pod_logs_dir.display(),
        o.container_logs_dir.display(),
        o.state_dir.display(),
        o.listen,
        o.forget_after.as_secs(),
        o.node_name.as_deref().unwrap_or("-")
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let code = rt.block_on(async move { main_loop(o).await })?;
    // The blocking kmsg read cannot be cancelled: leave without waiting for it.
    rt.shutdown_background();
    std::process::exit(code)
}

async fn main_loop(o: Opts) -> Result<i32> {
    let Setup {
        mut processor,
        counters,
        replay,
        mut watch,
    } = setup(&o)?;
    // A replayed capture is another node's past: this host's signals say nothing about it.
    let extra: Option<Extra> = (!replay).then(|| {
        watch.tick();
        watch.metrics()
    });
    let kmsg_path = o.kmsg.to_string_lossy().to_string();
    let mut follower = match Follower::open(&kmsg_path) {
        Ok(f) => f,
        Err(e) => bail!("{e} (oomwatch needs CAP_SYSLOG and the host's /dev/kmsg; in a container, /dev/kmsg must also be allowed as a device: privileged, or a device rule)"),
    };
    let app = Arc::new(App {
        metrics: Metrics::new(counters.clone(), extra, true),
        stopped: Mutex::new(None),
    });
    let listener = tokio::net::TcpListener::bind(o.listen)
        .await
        .with_context(|| format!("cannot listen on {}", o.listen))?;
    tracing::info!(
        "serving /metrics on {}",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    tokio::spawn(server::serve(listener, app.clone()));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut sample = tokio::time::interval(o.sample_interval.max(Duration::from_millis(100)));
    let forget = o.forget_after.as_secs_f64();
    let code = loop {
        tokio::select! {
            item = follower.next() => match item {
                Some(Item::Record(r)) => processor.record(r.seq, r.usec, r.kernel, &r.text),
                Some(Item::Overrun) => tracing::warn!("the kernel ring overwrote records before they were read; counting the gap"),
                Some(Item::Unreadable(m)) => {
                    tracing::debug!("unreadable kmsg line: {m}");
                    processor.unreadable();
                }
                Some(Item::Failed(e)) if replay => bail!("cannot read {}: {e}", o.kmsg.display()),
                Some(Item::Failed(e)) => {
                    tracing::error!("kmsg reader stopped: {e}");
                    *app.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    // Keep serving so /healthz tells the kubelet to restart us.
                    term.recv().await;
                    break 1;
                }
                None if replay => {
                    processor.finish();
                    tracing::info!("end of {}", o.kmsg.display());
                    break 0;
                }
                None => {
                    *app.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some("end of kmsg".into());
                    term.recv().await;
                    break 1;
                }
            },
            _ = tick.tick() => processor.tick(now(), forget),
            _ = sample.tick(), if !replay => watch.tick(),
            _ = term.recv() => { tracing::info!("SIGTERM: saving state and stopping"); break 0; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted: saving state and stopping"); break 0; }
        }
    };
    processor.save_if_dirty();
    if let Some(p) = &o.write_metrics {
        std::fs::write(p, app.metrics.text())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
