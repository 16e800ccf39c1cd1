//! grafana/: the dashboard and the alert rules, checked offline (lint,
//! promtool) and against a real Prometheus scraping oomwatch while the
//! kernel OOM-kills real processes: every panel and alert expression must
//! run, and the kill panels must return the victims' series.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn grafana() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana")
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(grafana().join("oomwatch.json")).unwrap())
        .expect("valid JSON")
}

#[test]
fn dashboard_lint() {
    let d = dashboard();
    let inputs = d["__inputs"].as_array().unwrap();
    assert!(inputs
        .iter()
        .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"));
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut ids = std::collections::BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let desc = p["description"].as_str().unwrap_or("");
        assert!(
            desc.ends_with('.') && desc.len() > 20,
            "{title}: one plain sentence"
        );
        assert!(
            p["fieldConfig"]["defaults"]["unit"].is_string(),
            "{title}: unit"
        );
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let e = t["expr"].as_str().unwrap();
            assert!(
                !e.contains("[1m]") && !e.contains("[5m]"),
                "{title}: use $__rate_interval/$__range: {e}"
            );
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        assert_eq!(v["datasource"]["uid"], "${DS_PROMETHEUS}");
    }
    let text = serde_json::to_string(&d).unwrap();
    assert!(
        !text.contains("\"uid\":\"P") && !text.contains("\"uid\":\"prometheus\""),
        "hard-coded data source uid"
    );
}

fn promtool(args: &[&str]) -> Option<std::process::Output> {
    tool(
        "promtool",
        args,
        &grafana(),
        None,
        "apt-get install prometheus",
    )
}

#[test]
fn alert_rules_check_and_unit_tests() {
    for args in [
        &["check", "rules", "alerts.yaml"][..],
        &["test", "rules", "alerts_test.yaml"],
    ] {
        if let Some(o) = promtool(args) {
            assert!(
                o.status.success(),
                "promtool {args:?}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn prometheusrule_holds_the_same_rules() {
    let y = |f: &str| -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(grafana().join(f)).unwrap()).unwrap()
    };
    let (rules, pr) = (y("alerts.yaml"), y("prometheusrule.yaml"));
    assert_eq!(pr["kind"], serde_yaml_ng::Value::from("PrometheusRule"));
    assert_eq!(pr["spec"]["groups"], rules["groups"]);
}

/// Percent-encoding for a query string value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// HTTP/1.0, so the answer is not chunked.
fn query(port: u16, expr: &str) -> Value {
    use std::io::{Read, Write};
    let mut body = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = write!(
            s,
            "GET /api/v1/query?query={} HTTP/1.0\r\nHost: localhost\r\n\r\n",
            enc(expr)
        );
        let _ = s.read_to_string(&mut body);
    }
    let json = body.split_once("\r\n\r\n").map_or("", |x| x.1);
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// Grafana's variables, as a dashboard with "All" selected sends them.
fn grafana_vars(e: &str) -> String {
    e.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$node", ".*")
        .replace("$namespace", ".*")
        .replace("$qos", ".*")
        .replace("$job", ".*")
}

struct Prom(Child);

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_query_runs_against_a_real_prometheus_scraping_real_kills() {
    if !require_real_kernel("every_query_runs_against_a_real_prometheus_scraping_real_kills") {
        return;
    }
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus missing in CI"
        );
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    }
    let _one_at_a_time = serial();
    let tmp = Scratch::new("grafana");
    let top = format!("/oomwatch-grafana-{}", std::process::id());
    let (u1, u2, c1, c2) = (uuid(), uuid(), container_id(), container_id());
    pod_logs(&tmp.0, "shop", "cart-1", &u1, "app", &c1);
    pod_logs(&tmp.0, "shop", "search-1", &u2, "app", &c2);
    let d = Daemon::start(
        &tmp.0,
        &tmp.0.join("state"),
        &["--sample-interval", "500ms"],
    );
    let prom_port = free_port();
    std::fs::write(
        tmp.0.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: oomwatch\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n", d.port),
    )
    .unwrap();
    let _prom = Prom(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                tmp.0.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.0.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("timed out waiting for {what}");
    };
    until("the first scrape", &|| {
        query(prom_port, "up{job=\"oomwatch\"}")["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });

    let be = Cgroup::new(
        &format!("{top}/kubepods/besteffort/pod{u1}/{c1}"),
        "24M",
        &top,
    );
    let bu = Cgroup::new(
        &format!("{top}/kubepods/burstable/pod{u2}/{c2}"),
        "24M",
        &top,
    );
    // Twice each, a scrape apart: a counter series is born at its first
    // kill, and increase() counts from the second sample on.
    for _ in 0..2 {
        be.oom(1000, 100);
        bu.oom(988, 100);
        std::thread::sleep(Duration::from_millis(2500));
    }
    until("the victims in Prometheus", &|| {
        query(
            prom_port,
            "sum(oomwatch_oom_kills_total{namespace=\"shop\"})",
        )["data"]["result"][0]["value"][1]
            .as_str()
            == Some("4")
    });

    let dash = dashboard();
    let mut failures = Vec::new();
    let kill_panels = [
        "OOM kills by QoS class",
        "OOM kills by cause",
        "Top OOM-killed containers",
        "Why the kubelet did not evict",
        "Victim memory at kill",
        "oomwatch up",
    ];
    let mut ran = 0;
    for p in dash["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let expr = grafana_vars(t["expr"].as_str().unwrap());
            let r = query(prom_port, &expr);
            ran += 1;
            if r["status"] != "success" {
                failures.push(format!("{title}: {expr}: {r}"));
                continue;
            }
            let result = r["data"]["result"].as_array().cloned().unwrap_or_default();
            if kill_panels.contains(&title) && result.is_empty() {
                failures.push(format!("{title}: no data: {expr}"));
            }
            if title.starts_with("OOM kills by") || title == "Top OOM-killed containers" {
                let txt = serde_json::to_string(&result).unwrap();
                if t["refId"] == "A"
                    && !(txt.contains("BestEffort")
                        || txt.contains("memcg")
                        || txt.contains("cart-1"))
                {
                    failures.push(format!("{title}: the victims' series are missing: {txt}"));
                }
            }
        }
    }
    let ann = grafana_vars(dash["annotations"]["list"][0]["expr"].as_str().unwrap());
    if query(prom_port, &ann)["status"] != "success" {
        failures.push(format!("annotation: {ann}"));
    }
    // Template variables: label_values(metric, label) is count by (label) (metric).
    for v in dash["templating"]["list"].as_array().unwrap() {
        let q = v["query"]["query"].as_str().unwrap();
        let inner = q.trim_start_matches("label_values(").trim_end_matches(')');
        let (metric, label) = inner.rsplit_once(", ").unwrap();
        let r = query(
            prom_port,
            &grafana_vars(&format!("count by ({label}) ({metric})")),
        );
        if r["data"]["result"].as_array().is_none_or(|x| x.is_empty()) {
            failures.push(format!("variable {}: no values: {q}", v["name"]));
        }
    }
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(grafana().join("alerts.yaml")).unwrap())
            .unwrap();
    for r in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let expr = r["expr"].as_str().unwrap();
        ran += 1;
        if query(prom_port, expr)["status"] != "success" {
            failures.push(format!("alert {:?}: {expr}", r["alert"]));
        }
    }
    eprintln!("{ran} panel and alert queries ran against Prometheus");
    // The exposition Prometheus scraped, live, passes promtool's lint.
    let scraped = d.get("/metrics").unwrap_or_default();
    let body = scraped
        .split_once("\r\n\r\n")
        .map_or("", |x| x.1)
        .to_string();
    assert!(
        body.contains("oomwatch_memory_available_bytes") && body.contains("namespace=\"shop\""),
        "{body}"
    );
    if let Some(Err(e)) = promtool_check_metrics(&body) {
        failures.push(format!("promtool check metrics: {e}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(d.stop(), Some(0));
    drop((be, bu));
}
