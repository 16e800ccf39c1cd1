//! The daemon against real kernel OOM kills (cgroup v1 on this machine):
//! log lines and metrics scraped over HTTP. Needs root; see common/mod.rs.

mod common;
use common::*;

/// All three QoS classes, cgroupfs and systemd-shaped paths, named from a
/// /var/log/pods tree; a child killed beside its surviving main process.
#[test]
fn real_kills_are_named_and_counted() {
    if !require_real_kernel("real_kills_are_named_and_counted") {
        return;
    }
    let _one_at_a_time = serial();
    let tmp = Scratch::new("real-kills");
    let top = format!("/oomwatch-test-{}", std::process::id());
    let (u_be, u_bu, u_gu, u_sd) = (uuid(), uuid(), uuid(), uuid());
    let (c_be, c_bu, c_gu, c_sd) = (
        container_id(),
        container_id(),
        container_id(),
        container_id(),
    );
    pod_logs(&tmp.0, "demo", "besteffort-1", &u_be, "eater", &c_be);
    pod_logs(&tmp.0, "demo", "burstable-1", &u_bu, "eater", &c_bu);
    pod_logs(&tmp.0, "demo", "guaranteed-1", &u_gu, "eater", &c_gu);
    pod_logs(&tmp.0, "shop", "web-1", &u_sd, "app", &c_sd);
    let d = Daemon::start(&tmp.0, &tmp.0.join("state"), &[]);
    wait_out_rate_limit();

    let be = Cgroup::new(
        &format!("{top}/kubepods/besteffort/pod{u_be}/{c_be}"),
        "32M",
        &top,
    );
    let bu = Cgroup::new(
        &format!("{top}/kubepods/burstable/pod{u_bu}/{c_bu}"),
        "32M",
        &top,
    );
    let gu = Cgroup::new(&format!("{top}/kubepods/pod{u_gu}/{c_gu}"), "32M", &top);
    let u_sd_ = u_sd.replace('-', "_");
    let sd = Cgroup::new(
        &format!("{top}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u_sd_}.slice/cri-containerd-{c_sd}.scope"),
        "48M",
        &top,
    );
    assert_eq!(be.oom(1000, 100), 9);
    assert_eq!(bu.oom(988, 100), 9);
    assert_eq!(gu.oom(0, 100), 9);
    // A main process that survives its child's kill.
    let main = sd.spawn(500, &format!("sh -c '{} 100; sleep 30'", hog().display()));
    d.wait_for(
        || d.log().contains("shop/web-1 container app"),
        "the child kill",
    );
    let mut main = main;
    let _ = main.kill();
    let _ = main.wait();

    d.wait_for(
        || {
            [&u_be, &u_bu, &u_gu]
                .iter()
                .all(|_| d.log().matches("OOM kill: demo/").count() >= 3)
        },
        "three kills",
    );
    let log = d.log();
    let line = |pod: &str| {
        log.lines()
            .find(|l| l.contains(pod))
            .unwrap_or_else(|| panic!("no line for {pod}:\n{log}"))
            .to_string()
    };
    let l = line("demo/besteffort-1");
    assert!(l.starts_with("test-node ["), "{l}");
    assert!(
        l.contains("demo/besteffort-1 container eater (BestEffort) pid "),
        "{l}"
    );
    assert!(l.contains("main process"), "{l}");
    assert!(
        l.contains(&format!(
            "cgroup limit of {top}/kubepods/besteffort/pod{u_be}/{c_be}, limit 32.0 MiB"
        )),
        "{l}"
    );
    assert!(l.contains("oom_score_adj 1000 |"), "{l}");
    assert!(l.contains("anon-rss 3"), "{l}");
    let l = line("demo/burstable-1");
    assert!(
        l.contains("(Burstable)") && l.contains("oom_score_adj 988 |"),
        "{l}"
    );
    let l = line("demo/guaranteed-1");
    assert!(
        l.contains("(Guaranteed)") && l.contains("expected -997 for Guaranteed"),
        "{l}"
    );
    let l = line("shop/web-1");
    assert!(
        l.contains("container app (Burstable)") && l.contains("child process"),
        "{l}"
    );
    assert!(!l.contains("replayed"), "{l}");

    let m = d.get("/metrics").unwrap();
    assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
    for (pod, qos) in [
        ("besteffort-1", "BestEffort"),
        ("burstable-1", "Burstable"),
        ("guaranteed-1", "Guaranteed"),
    ] {
        let s = format!("oomwatch_oom_kills_total{{namespace=\"demo\",pod=\"{pod}\",container=\"eater\",qos_class=\"{qos}\",constraint=\"memcg\"}}");
        assert_eq!(sample(&m, &s), Some(1.0), "{s} in\n{m}");
    }
    assert_eq!(
        sum(
            &m,
            "oomwatch_oom_kills_total",
            &["pod=\"web-1\"", "container=\"app\""]
        ),
        1.0
    );
    assert!(
        sum(
            &m,
            "oomwatch_last_oom_kill_timestamp_seconds",
            &["pod=\"besteffort-1\""]
        ) > 1.7e9
    );
    assert!(sum(&m, "oomwatch_kmsg_records_total", &[]) > 0.0);
    assert!(
        m.contains("process_resident_memory_bytes"),
        "process metrics"
    );
    assert!(d.get("/").unwrap().contains("/metrics"));
    assert!(d.get("/nope").unwrap().starts_with("HTTP/1.1 404"));
    assert_eq!(d.stop(), Some(0));
    drop((be, bu, gu, sd));
}

/// Restart between kills, cleanly and by crash: totals exact, no duplicates.
#[test]
fn restarts_neither_drop_nor_double_count() {
    if !require_real_kernel("restarts_neither_drop_nor_double_count") {
        return;
    }
    let _one_at_a_time = serial();
    let tmp = Scratch::new("restart");
    let state = tmp.0.join("state");
    let top = format!("/oomwatch-restart-{}", std::process::id());
    let (uid, id) = (uuid(), container_id());
    pod_logs(&tmp.0, "demo", "flaky", &uid, "eater", &id);
    let cg = Cgroup::new(
        &format!("{top}/kubepods/burstable/pod{uid}/{id}"),
        "32M",
        &top,
    );
    let series = "oomwatch_oom_kills_total{namespace=\"demo\",pod=\"flaky\",container=\"eater\",qos_class=\"Burstable\",constraint=\"memcg\"}".to_string();
    let count = |d: &Daemon| sample(&d.get("/metrics").unwrap_or_default(), &series);

    let d = Daemon::start(&tmp.0, &state, &[]);
    cg.oom(500, 100);
    d.wait_for(|| count(&d) == Some(1.0), "kill 1");
    assert_eq!(d.stop(), Some(0));

    cg.oom(500, 100); // while nobody watches
    let d = Daemon::start(&tmp.0, &state, &[]);
    d.wait_for(|| count(&d) == Some(2.0), "kill 2, from the ring");
    assert!(d.log().contains("replayed"), "{}", d.log());
    assert_eq!(
        d.log().matches("demo/flaky").count(),
        1,
        "kill 1 logged again:\n{}",
        d.log()
    );
    cg.oom(500, 100);
    d.wait_for(|| count(&d) == Some(3.0), "kill 3");
    d.crash();

    let d = Daemon::start(&tmp.0, &state, &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(count(&d), Some(3.0), "after a crash");
    cg.oom(500, 100);
    d.wait_for(|| count(&d) == Some(4.0), "kill 4");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(count(&d), Some(4.0));
    assert_eq!(d.stop(), Some(0));
}

/// 16 kills inside one second: the kernel rate-limits the reports, every
/// kill is still counted and attributed to its pod.
#[test]
fn a_burst_of_rate_limited_kills_is_counted_and_attributed() {
    if !require_real_kernel("a_burst_of_rate_limited_kills_is_counted_and_attributed") {
        return;
    }
    let _one_at_a_time = serial();
    let tmp = Scratch::new("burst");
    let top = format!("/oomwatch-burst-{}", std::process::id());
    let uid = uuid();
    let ids: Vec<String> = (0..16).map(|_| container_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        pod_logs(&tmp.0, "burst", "many", &uid, &format!("c{i}"), id);
    }
    let cgs: Vec<Cgroup> = ids
        .iter()
        .map(|id| {
            Cgroup::new(
                &format!("{top}/kubepods/besteffort/pod{uid}/{id}"),
                "16M",
                &top,
            )
        })
        .collect();
    let d = Daemon::start(&tmp.0, &tmp.0.join("state"), &[]);
    let t = std::time::Instant::now();
    let kids: Vec<_> = cgs
        .iter()
        .map(|c| c.spawn(1000, &format!("{} 64", hog().display())))
        .collect();
    for mut k in kids {
        k.wait().unwrap();
    }
    let took = t.elapsed();
    let m = || d.get("/metrics").unwrap_or_default();
    d.wait_for(
        || sum(&m(), "oomwatch_oom_kills_total", &["pod=\"many\""]) >= 16.0,
        "16 kills",
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let metrics = m();
    assert_eq!(
        sum(&metrics, "oomwatch_oom_kills_total", &["pod=\"many\""]),
        16.0,
        "{metrics}"
    );
    let log = d.log();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains("burst/many")).collect();
    assert_eq!(ours.len(), 16, "{log}");
    let bare = ours.iter().filter(|l| l.contains("rate-limited")).count();
    eprintln!("16 kills in {took:?}: {bare} reports rate-limited by the kernel");
    assert!(
        bare > 0,
        "the kernel did not rate-limit: not a burst test\n{log}"
    );
    for l in &ours {
        assert!(l.contains("(BestEffort)"), "not attributed: {l}");
    }
    assert_eq!(d.stop(), Some(0));
}

/// A kubepods cgroup with a limit stands in for node allocatable; pods below
/// it have no limits, one pod has its own. Real kills get the verdicts
/// `allocatable` and `memcg-limit`; the signals are exported.
#[test]
fn verdicts_for_allocatable_and_limit_kills() {
    if !require_real_kernel("verdicts_for_allocatable_and_limit_kills") {
        return;
    }
    let _one_at_a_time = serial();
    let tmp = Scratch::new("verdicts");
    let top = format!("/oomwatch-verdict-{}", std::process::id());
    let (u_alloc, u_lim) = (uuid(), uuid());
    let (c_alloc, c_lim) = (container_id(), container_id());
    pod_logs(&tmp.0, "demo", "unlimited", &u_alloc, "eater", &c_alloc);
    pod_logs(&tmp.0, "demo", "limited", &u_lim, "eater", &c_lim);
    let kubepods = Cgroup::new(&format!("{top}/kubepods"), "64M", &top);
    let alloc = Cgroup::new(
        &format!("{top}/kubepods/besteffort/pod{u_alloc}/{c_alloc}"),
        "",
        &top,
    );
    let lim = Cgroup::new(
        &format!("{top}/kubepods/burstable/pod{u_lim}/{c_lim}"),
        "24M",
        &top,
    );
    let d = Daemon::start(
        &tmp.0,
        &tmp.0.join("state"),
        &[
            "--eviction-hard",
            "20Mi",
            "--sample-interval",
            "200ms",
            "--kubepods-cgroup",
            &format!("{top}/kubepods"),
        ],
    );
    // A pod without requests that grows by 40 MiB and holds it.
    let mut grower = alloc.spawn(1000, &format!("{} 40 1000 3", hog().display()));
    d.wait_for(
        || {
            d.stderr()
                .contains("pods without memory requests (BestEffort) grew by")
        },
        "the growth warning",
    );
    grower.wait().unwrap();
    wait_out_rate_limit();
    assert_eq!(alloc.oom(1000, 200), 9);
    assert_eq!(lim.oom(988, 200), 9);
    d.wait_for(|| d.log().contains("demo/limited"), "both kills");
    let log = d.log();
    let line = |pod: &str| log.lines().find(|l| l.contains(pod)).unwrap().to_string();
    let l = line("demo/unlimited");
    assert!(
        l.contains(&format!(
            "verdict allocatable: the kubepods cgroup {top}/kubepods (64.0 MiB) hit its limit"
        )),
        "{l}"
    );
    let l = line("demo/limited");
    assert!(
        l.contains("verdict memcg-limit: the limit of") && l.contains("(24.0 MiB)"),
        "{l}"
    );
    let m = d.get("/metrics").unwrap();
    assert!(
        sample(
            &m,
            "oomwatch_oom_kill_verdicts_total{verdict=\"allocatable\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    assert!(
        sample(
            &m,
            "oomwatch_oom_kill_verdicts_total{verdict=\"memcg-limit\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "oomwatch_eviction_threshold_bytes{signal=\"memory.available\",kind=\"hard\"}"
        ),
        Some(20.0 * 1048576.0)
    );
    assert!(
        sample(&m, "oomwatch_allocatable_memory_available_bytes").is_some(),
        "{m}"
    );
    let avail = sample(&m, "oomwatch_memory_available_bytes").expect("memory.available sampled");
    let memavail = sample(&m, "oomwatch_meminfo_available_bytes").expect("MemAvailable sampled");
    assert!(avail > 0.0 && memavail > 0.0, "{avail} {memavail}");
    assert!(
        m.contains("oomwatch_memory_pressure_seconds_total{kind=\"some\"}"),
        "{m}"
    );
    assert_eq!(d.stop(), Some(0));
    drop((alloc, lim, kubepods));
}
