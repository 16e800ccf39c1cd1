//! Shared by the real-kernel tests: cgroups with limits, a hog that gets
//! OOM-killed, a daemon to start and scrape, a pod log tree.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MEM: &str = "/sys/fs/cgroup/memory";

/// Real kills share the kernel's rate limit and cgroup counters: one test
/// at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kernel prints about 10 OOM reports per 5 s; wait that out so the
/// next reports are whole.
pub fn wait_out_rate_limit() {
    std::thread::sleep(Duration::from_millis(5200));
}

/// Root and a writable cgroup v1 memory controller, or why not. In CI a
/// missing requirement fails the test instead of skipping it.
pub fn require_real_kernel(test: &str) -> bool {
    let why = if unsafe_geteuid() != 0 {
        Some("not root")
    } else if !Path::new(MEM).join("memory.usage_in_bytes").exists() {
        Some("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    } else if std::fs::File::open("/dev/kmsg").is_err() {
        Some("/dev/kmsg is not readable")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{test}: needs a real kernel OOM, but {w} (CI=true: failing instead of skipping)"
        ),
        Some(w) => {
            eprintln!("SKIPPED {test}: {w}; run as root with cgroup v1 (CI runs it)");
            false
        }
    }
}

fn unsafe_geteuid() -> u32 {
    // No libc dependency: the owner of /proc/self is the effective user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX)
}

/// The hog (tests/real/hog.c), compiled once into target/.
pub fn hog() -> PathBuf {
    static HOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOG.get_or_init(compile_hog).clone()
}

fn compile_hog() -> PathBuf {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-hog");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/hog.c");
    let stale = std::fs::metadata(&out).and_then(|m| m.modified()).ok()
        < std::fs::metadata(&src).and_then(|m| m.modified()).ok();
    if stale {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let st = Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc (apt-get install gcc)");
        assert!(st.success(), "gcc failed");
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

pub fn uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .to_string()
}

pub fn container_id() -> String {
    let a = uuid().replace('-', "");
    let b = uuid().replace('-', "");
    format!("{a}{b}")
}

/// A memory cgroup that removes itself (deepest first) when dropped.
pub struct Cgroup {
    pub path: String,
    top: PathBuf,
}

impl Cgroup {
    /// `path` as the kernel prints it; `top` is the first component to remove.
    pub fn new(path: &str, limit: &str, top: &str) -> Cgroup {
        let dir = Path::new(MEM).join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        if !limit.is_empty() {
            std::fs::write(dir.join("memory.limit_in_bytes"), limit).unwrap();
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit);
        }
        Cgroup {
            path: path.to_string(),
            top: Path::new(MEM).join(top.trim_start_matches('/')),
        }
    }

    pub fn dir(&self) -> PathBuf {
        Path::new(MEM).join(self.path.trim_start_matches('/'))
    }

    /// Start a shell in this cgroup that execs `cmd` with `oom_score_adj`.
    pub fn spawn(&self, adj: i32, cmd: &str) -> Child {
        let script = format!(
            "echo $$ > {}/cgroup.procs && echo {adj} > /proc/self/oom_score_adj && exec {cmd}",
            self.dir().display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Run the hog to its death (exit 137).
    pub fn oom(&self, adj: i32, mib: u32) -> i32 {
        let st = self
            .spawn(adj, &format!("{} {mib}", hog().display()))
            .wait()
            .unwrap();
        std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let mut dirs = Vec::new();
        let mut stack = vec![self.top.clone()];
        while let Some(d) = stack.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("oomwatch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `/var/log/pods` and `/var/log/containers` entries for one container.
pub fn pod_logs(root: &Path, ns: &str, pod: &str, uid: &str, container: &str, id: &str) {
    std::fs::create_dir_all(root.join(format!("pods/{ns}_{pod}_{uid}/{container}"))).unwrap();
    std::fs::write(
        root.join(format!("pods/{ns}_{pod}_{uid}/{container}/0.log")),
        "",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("containers")).unwrap();
    std::fs::write(
        root.join(format!("containers/{pod}_{ns}_{container}-{id}.log")),
        "",
    )
    .unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// `oomwatch run` on the real /dev/kmsg, names from `root`, state in `state`.
    pub fn start(root: &Path, state: &Path, extra: &[&str]) -> Daemon {
        let port = free_port();
        let log = root.join(format!("daemon-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_oomwatch"))
            .arg("run")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(state)
            .arg("--pod-logs-dir")
            .arg(root.join("pods"))
            .arg("--container-logs-dir")
            .arg(root.join("containers"))
            .arg("--runtime-state-dir")
            .arg(root.join("runtime"))
            .args(["--node-name", "test-node"])
            .args(extra)
            .stdout(out)
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, port, log };
        d.wait_for(
            || d.get("/healthz").is_some_and(|b| b.contains("ok")),
            "healthz",
        );
        d
    }

    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Diagnostics (stderr).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    pub fn wait_for(&self, mut f: impl FnMut() -> bool, what: &str) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
    }

    /// SIGTERM and wait: the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().ok()?.code()
    }

    /// SIGKILL: a crash.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// The value of one sample line in an exposition, by its exact label text.
pub fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Sum of all samples of a metric whose line contains every `needle`.
pub fn sum(metrics: &str, name: &str, needles: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Run an external tool in `dir`, feeding it `stdin`. A missing tool fails
/// the test in CI (CI installs it) and skips elsewhere, saying how to get it.
pub fn tool(
    name: &str,
    args: &[&str],
    dir: &Path,
    stdin: Option<&[u8]>,
    install: &str,
) -> Option<std::process::Output> {
    let child = Command::new(name)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} missing in CI ({install})"
        );
        eprintln!("SKIPPED {name} {args:?}: not installed ({install})");
        return None;
    };
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    Some(child.wait_with_output().unwrap())
}

/// `promtool check metrics` on an exposition: None when skipped, else its verdict.
pub fn promtool_check_metrics(exposition: &str) -> Option<Result<(), String>> {
    let o = tool(
        "promtool",
        &["check", "metrics"],
        Path::new("."),
        Some(exposition.as_bytes()),
        "apt-get install prometheus",
    )?;
    Some(if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    })
}
