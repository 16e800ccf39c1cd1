//! `cargo bench --bench decode_throughput`: decode a ~100 MB generated dump
//! (one real OOM report per ~2,000 lines of other kernel messages) and time
//! it against `grep -c 'Killed process'` on the same file. Prints figures;
//! the goal is within 3x of grep.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TARGET_BYTES: usize = 100 << 20;
const LINES_PER_REPORT: usize = 2000;

const NOISE: &[&str] = &[
    "IPv6: ADDRCONF(NETDEV_CHANGE): lxc8d2f0a1b3c4e: link becomes ready",
    "cilium_vxlan: Caught tx_queue_len zero misconfig",
    "EXT4-fs (vda1): re-mounted 5b7a2d0c-2f0e-4f43-9f55-3a9d1e0c2b11. Quota mode: none.",
    "audit: type=1400 audit(1730012154.123:5521): apparmor=\"STATUS\" operation=\"profile_replace\" name=\"cri-containerd.apparmor.d\"",
    "eth0: renamed from tmp4f1e2",
    "IPVS: rr: TCP 10.96.0.10:53 - no destination available",
    "nfs: server 172.16.3.10 not responding, still trying",
    "overlayfs: upperdir is in-use as upperdir/workdir of another mount, accessing files from both mounts will result in undefined behavior.",
];

fn dump_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-dump-100m.log")
}

/// The first full report of a real capture, re-stamped at `t`.
fn report(template: &[&str], t: f64, out: &mut impl Write) -> std::io::Result<()> {
    for (i, body) in template.iter().enumerate() {
        writeln!(out, "[{:12.6}] {body}", t + i as f64 * 1e-6)?;
    }
    Ok(())
}

fn generate(path: &Path) -> std::io::Result<usize> {
    let capture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode/v1-qos-classes.dmesg"),
    )?;
    let bodies: Vec<&str> = capture
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |x| x.1))
        .collect();
    let end = bodies
        .iter()
        .position(|l| l.contains("Killed process"))
        .unwrap()
        + 1;
    let template = &bodies[..end];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let (mut written, mut t, mut reports, mut line) = (0usize, 100.0f64, 0usize, 0usize);
    let mut buf = Vec::new();
    while written < TARGET_BYTES {
        if line % LINES_PER_REPORT == LINES_PER_REPORT - 1 {
            buf.clear();
            report(template, t, &mut buf)?;
            reports += 1;
        } else {
            buf.clear();
            writeln!(buf, "[{t:12.6}] {}", NOISE[line % NOISE.len()])?;
        }
        out.write_all(&buf)?;
        written += buf.len();
        t += 0.000731;
        line += 1;
    }
    out.flush()?;
    Ok(reports)
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t0 = Instant::now();
        let v = f();
        best = best.min(t0.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn main() {
    let path = dump_path();
    let reports = match std::fs::metadata(&path) {
        Ok(m) if m.len() as usize >= TARGET_BYTES => None,
        _ => Some(generate(&path).expect("generate dump")),
    };
    let size = std::fs::metadata(&path).unwrap().len();
    // Warm the page cache for both contenders.
    std::io::copy(
        &mut std::fs::File::open(&path).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();

    let (grep_time, grep_count) = best_of(5, || {
        let o = std::process::Command::new("grep")
            .args(["-c", "Killed process"])
            .arg(&path)
            .output()
            .expect("grep");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    });
    let (ours, kills) = best_of(5, || {
        oomwatch::cli::decode::decode_path(&path)
            .unwrap()
            .kills
            .len()
    });
    let mb = size as f64 / 1e6;
    println!(
        "dump: {} ({mb:.1} MB{})",
        path.display(),
        reports
            .map(|r| format!(", {r} reports generated"))
            .unwrap_or_default()
    );
    println!(
        "grep -c 'Killed process': {:>8.1} ms  ({grep_count} lines, {:.0} MB/s)",
        ms(grep_time),
        mb / grep_time.as_secs_f64()
    );
    println!(
        "oomwatch decode:          {:>8.1} ms  ({kills} kills, {:.0} MB/s, read + decode)",
        ms(ours),
        mb / ours.as_secs_f64()
    );
    let ratio = ours.as_secs_f64() / grep_time.as_secs_f64();
    println!(
        "ratio: {ratio:.2}x grep (goal: within 3x) {}",
        if ratio <= 3.0 { "MET" } else { "NOT MET" }
    );
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        });
    println!(
        "peak resident memory of this process: {} kB (the decoder streams through a 1 MiB buffer)",
        hwm.unwrap_or_default()
    );
    assert_eq!(kills, grep_count, "every Killed process line is a kill");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
