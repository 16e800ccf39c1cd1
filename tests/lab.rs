//! eater/lab.sh, the seed experiment on one machine, end to end: real CRI
//! pods under a limited kubepods cgroup, real kills, oomwatch's verdicts,
//! and nothing left behind. Root, cgroup v1, containerd (CI has them).

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_lab_reproduces_the_seed_and_cleans_up() {
    if !require_real_kernel("the_lab_reproduces_the_seed_and_cleans_up") {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eater/lab.sh");
    let o = Command::new("bash")
        .arg(script)
        .env("ROUNDS", "2")
        .env("OOMWATCH_BIN", env!("CARGO_BIN_EXE_oomwatch"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let order: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                && l.contains("lab/")
        })
        .collect();
    assert_eq!(order.len(), 4, "{out}");
    for (i, l) in order.iter().enumerate() {
        let want = if i % 2 == 0 {
            "lab/besteffort container eater (BestEffort)"
        } else {
            "lab/burstable container eater (Burstable)"
        };
        assert!(l.contains(want), "kill {}: {l}\n{out}", i + 1);
    }
    assert!(out.contains("4 verdict allocatable"), "{out}");
    assert!(
        !out.contains("guaranteed-"),
        "a Guaranteed pod was killed:\n{out}"
    );
    let left = std::fs::read_dir(MEM)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("oomwatch-lab-"))
        .count();
    assert_eq!(left, 0, "lab cgroups left behind");
}
