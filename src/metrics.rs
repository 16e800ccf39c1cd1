//! Prometheus exposition. Kill-derived metrics are rendered from the
//! persisted `Counters` (one truth, restart-safe); build info and process
//! metrics come from the prometheus crate.

use crate::state::{Counters, RSS_BUCKETS};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub type Shared = Arc<Mutex<Counters>>;

/// Samplers of the eviction signals add gauges through this.
pub type Extra = Arc<dyn Fn() -> Vec<MetricFamily> + Send + Sync>;

struct FromCounters {
    counters: Shared,
    extra: Option<Extra>,
    descs: Vec<Desc>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

pub fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<proto::Metric>,
) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

pub fn counter(pairs: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(v);
    let mut m = proto::Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

pub fn gauge(pairs: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(v);
    let mut m = proto::Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

impl Collector for FromCounters {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let c = match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut out = render(&c);
        if let Some(extra) = &self.extra {
            out.extend(extra());
        }
        out
    }
}

/// All kill-derived families, in a stable order.
pub fn render(c: &Counters) -> Vec<MetricFamily> {
    let mut kills = c.kills.clone();
    kills.sort_by(|a, b| a.labels.cmp(&b.labels));
    let kill_metrics = kills
        .iter()
        .map(|s| {
            let l = &s.labels;
            counter(
                &[
                    ("namespace", &l.namespace),
                    ("pod", &l.pod),
                    ("container", &l.container),
                    ("qos_class", &l.qos_class),
                    ("constraint", &l.constraint),
                ],
                s.count as f64,
            )
        })
        .collect();
    let mut last: BTreeMap<(&str, &str, &str), f64> = BTreeMap::new();
    for s in &kills {
        let e = last
            .entry((&s.labels.namespace, &s.labels.pod, &s.labels.container))
            .or_insert(0.0);
        *e = e.max(s.last_kill);
    }
    let last_metrics = last
        .iter()
        .map(|((n, p, ct), t)| gauge(&[("namespace", n), ("pod", p), ("container", ct)], *t))
        .collect();
    let hist_metrics = c
        .victim_rss
        .iter()
        .map(|(qos, h)| {
            let mut acc = 0;
            let buckets = RSS_BUCKETS
                .iter()
                .enumerate()
                .map(|(i, ub)| {
                    acc += h.buckets.get(i).copied().unwrap_or(0);
                    let mut b = proto::Bucket::default();
                    b.set_upper_bound(*ub);
                    b.set_cumulative_count(acc);
                    b
                })
                .collect();
            let mut ph = proto::Histogram::default();
            ph.set_bucket(buckets);
            ph.set_sample_count(h.count);
            ph.set_sample_sum(h.sum);
            let mut m = proto::Metric::from_label(labels(&[("qos_class", qos)]));
            m.set_histogram(ph);
            m
        })
        .collect();
    let verdicts = c
        .verdicts
        .iter()
        .map(|(v, n)| counter(&[("verdict", v)], *n as f64))
        .collect();
    vec![
        family(
            "oomwatch_oom_kills_total",
            "Processes killed by the kernel OOM killer, by victim pod and why.",
            MetricType::COUNTER,
            kill_metrics,
        ),
        family(
            "oomwatch_last_oom_kill_timestamp_seconds",
            "Unix time of the last OOM kill in a container.",
            MetricType::GAUGE,
            last_metrics,
        ),
        family(
            "oomwatch_oom_victim_anon_rss_bytes",
            "Anonymous memory of OOM victims when killed.",
            MetricType::HISTOGRAM,
            hist_metrics,
        ),
        family(
            "oomwatch_oom_kill_verdicts_total",
            "OOM kills by why the kubelet did not evict instead.",
            MetricType::COUNTER,
            verdicts,
        ),
        family(
            "oomwatch_kmsg_records_total",
            "Kernel log records read.",
            MetricType::COUNTER,
            vec![counter(&[], c.records as f64)],
        ),
        family(
            "oomwatch_kmsg_records_lost_total",
            "Kernel log records lost before they were read (ring overwritten).",
            MetricType::COUNTER,
            vec![counter(&[], c.lost as f64)],
        ),
        family(
            "oomwatch_oom_reports_incomplete_total",
            "OOM reports that ended without a kill line.",
            MetricType::COUNTER,
            vec![counter(&[], c.incomplete as f64)],
        ),
        family(
            "oomwatch_oom_kills_unattributed_total",
            "OOM kills whose cgroup could not be found (rate-limited reports).",
            MetricType::COUNTER,
            vec![counter(&[], c.unattributed as f64)],
        ),
        family(
            "oomwatch_unreadable_lines_total",
            "Kernel log lines that could not be read, or OOM lines whose fields could not be parsed.",
            MetricType::COUNTER,
            vec![counter(&[], c.unreadable as f64)],
        ),
    ]
    .into_iter()
    .filter(|f| !f.get_metric().is_empty())
    .collect()
}

pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(counters: Shared, extra: Option<Extra>, process: bool) -> Metrics {
        let registry = Registry::new();
        let build = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("oomwatch_build_info", "oomwatch version."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let _ = registry.register(Box::new(build));
        let _ = registry.register(Box::new(FromCounters {
            counters,
            extra,
            descs: Vec::new(),
        }));
        if process {
            let _ = registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        Metrics { registry }
    }

    pub fn text(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
