//! The kubelet's eviction settings for memory, from its config file
//! (`KubeletConfiguration`, kubelet.config.k8s.io/v1beta1).

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("{0}: not a KubeletConfiguration: {1}")]
    Yaml(String, String),
    #[error("{field}: '{value}' is not a quantity (like 100Mi, 1Gi, 500M, 5%)")]
    Quantity { field: String, value: String },
}

/// A threshold as written: bytes, or a share of capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }
}

/// For command-line flags: a threshold or a message.
pub fn parse_flag(s: &str) -> Result<Threshold, String> {
    parse_quantity("value", s)
        .map_err(|_| format!("'{s}' is not a quantity (like 100Mi, 1Gi, 500M, 5%)"))
}

/// `100Mi`, `1.5Gi`, `500M`, `1e9`, `1048576`, or `5%`.
pub fn parse_quantity(field: &str, s: &str) -> Result<Threshold, ConfigError> {
    let bad = || ConfigError::Quantity {
        field: field.into(),
        value: s.into(),
    };
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| bad())?;
        return (0.0..=100.0)
            .contains(&v)
            .then_some(Threshold::Percent(v))
            .ok_or_else(bad);
    }
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1048576.0,
        "Gi" => 1073741824.0,
        "Ti" => 1099511627776.0,
        _ => return Err(bad()),
    };
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(bad());
    }
    Ok(Threshold::Bytes((n * mult) as u64))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    kind: Option<String>,
    eviction_hard: Option<BTreeMap<String, String>>,
    eviction_soft: Option<BTreeMap<String, String>>,
    eviction_soft_grace_period: Option<BTreeMap<String, String>>,
    kube_reserved: Option<BTreeMap<String, String>>,
    system_reserved: Option<BTreeMap<String, String>>,
    enforce_node_allocatable: Option<Vec<String>>,
}

/// What the kubelet evicts on, for memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Eviction {
    pub hard: Option<Threshold>,
    pub soft: Option<Threshold>,
    pub soft_grace: Option<String>,
    pub kube_reserved: u64,
    pub system_reserved: u64,
    pub enforce_node_allocatable: Vec<String>,
    /// Where the settings came from, for the start-up log.
    pub source: String,
}

/// The kubelet's default: `memory.available<100Mi`.
pub const DEFAULT_HARD: Threshold = Threshold::Bytes(100 * 1048576);

impl Default for Eviction {
    fn default() -> Self {
        Eviction {
            hard: Some(DEFAULT_HARD),
            soft: None,
            soft_grace: None,
            kube_reserved: 0,
            system_reserved: 0,
            enforce_node_allocatable: vec!["pods".into()],
            source: "kubelet defaults (no config file)".into(),
        }
    }
}

/// Parse a kubelet config file's text. Setting any `evictionHard` value
/// replaces the defaults: without `memory.available` there, there is no
/// hard memory threshold at all.
pub fn parse(name: &str, text: &str) -> Result<Eviction, ConfigError> {
    if text.trim().is_empty() {
        // The DaemonSet's FileOrCreate mount leaves an empty file on nodes without one.
        return Ok(Eviction {
            source: format!("kubelet defaults ({name} is empty)"),
            ..Default::default()
        });
    }
    let raw: Raw =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml(name.into(), e.to_string()))?;
    if let Some(k) = raw.kind.as_deref().filter(|k| *k != "KubeletConfiguration") {
        return Err(ConfigError::Yaml(name.into(), format!("kind is {k}")));
    }
    let mut e = Eviction {
        source: name.into(),
        ..Default::default()
    };
    if let Some(h) = &raw.eviction_hard {
        e.hard = h
            .get("memory.available")
            .map(|v| parse_quantity("evictionHard.memory.available", v))
            .transpose()?;
    }
    if let Some(s) = &raw.eviction_soft {
        e.soft = s
            .get("memory.available")
            .map(|v| parse_quantity("evictionSoft.memory.available", v))
            .transpose()?;
    }
    e.soft_grace = raw
        .eviction_soft_grace_period
        .as_ref()
        .and_then(|g| g.get("memory.available").cloned());
    let reserved =
        |m: &Option<BTreeMap<String, String>>, field: &str| -> Result<u64, ConfigError> {
            match m.as_ref().and_then(|m| m.get("memory")) {
                Some(v) => match parse_quantity(field, v)? {
                    Threshold::Bytes(b) => Ok(b),
                    Threshold::Percent(_) => Err(ConfigError::Quantity {
                        field: field.into(),
                        value: v.clone(),
                    }),
                },
                None => Ok(0),
            }
        };
    e.kube_reserved = reserved(&raw.kube_reserved, "kubeReserved.memory")?;
    e.system_reserved = reserved(&raw.system_reserved, "systemReserved.memory")?;
    if let Some(v) = raw.enforce_node_allocatable {
        e.enforce_node_allocatable = v;
    }
    Ok(e)
}

/// Read the kubelet's config file; its absence means the kubelet's defaults.
pub fn load(path: &std::path::Path) -> Result<Eviction, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&path.display().to_string(), &t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Eviction {
            source: format!("kubelet defaults ({} not found)", path.display()),
            ..Default::default()
        }),
        Err(e) => Err(ConfigError::Read(path.display().to_string(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1048576;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("f", "100Mi"), Ok(Threshold::Bytes(100 * MI)));
        assert_eq!(
            parse_quantity("f", "1.5Gi"),
            Ok(Threshold::Bytes(1536 * MI))
        );
        assert_eq!(
            parse_quantity("f", "500M"),
            Ok(Threshold::Bytes(500_000_000))
        );
        assert_eq!(parse_quantity("f", "1048576"), Ok(Threshold::Bytes(MI)));
        assert_eq!(parse_quantity("f", "5%"), Ok(Threshold::Percent(5.0)));
        assert_eq!(Threshold::Percent(5.0).bytes(1000), 50);
        for bad in ["", "Mi", "100Xi", "-1Mi", "101%", "abc", "1..2Gi"] {
            assert!(parse_quantity("f", bad).is_err(), "{bad}");
        }
    }

    /// The shape kubeadm writes to /var/lib/kubelet/config.yaml.
    const KUBEADM: &str = r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
evictionHard:
  memory.available: "200Mi"
  nodefs.available: "10%"
evictionSoft:
  memory.available: "500Mi"
evictionSoftGracePeriod:
  memory.available: "1m30s"
kubeReserved:
  cpu: 100m
  memory: 256Mi
systemReserved:
  memory: 0.5Gi
enforceNodeAllocatable:
- pods
rotateCertificates: true
"#;

    #[test]
    fn kubeadm_config() {
        let e = parse("config.yaml", KUBEADM).unwrap();
        assert_eq!(e.hard, Some(Threshold::Bytes(200 * MI)));
        assert_eq!(e.soft, Some(Threshold::Bytes(500 * MI)));
        assert_eq!(e.soft_grace.as_deref(), Some("1m30s"));
        assert_eq!((e.kube_reserved, e.system_reserved), (256 * MI, 512 * MI));
        assert_eq!(e.enforce_node_allocatable, vec!["pods".to_string()]);
    }

    #[test]
    fn setting_any_eviction_hard_value_drops_the_memory_default() {
        let e = parse(
            "c",
            "kind: KubeletConfiguration\nevictionHard:\n  nodefs.available: \"5%\"\n",
        )
        .unwrap();
        assert_eq!(e.hard, None);
        let e = parse("c", "kind: KubeletConfiguration\n").unwrap();
        assert_eq!(e.hard, Some(DEFAULT_HARD));
    }

    #[test]
    fn bad_values_say_which_field() {
        let err = parse(
            "c",
            "kind: KubeletConfiguration\nevictionHard:\n  memory.available: lots\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "evictionHard.memory.available: 'lots' is not a quantity (like 100Mi, 1Gi, 500M, 5%)"
        );
        let err = parse("c", "kind: Pod\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c: not a KubeletConfiguration: kind is Pod"
        );
        assert!(parse("c", "evictionHard: [1, 2").is_err());
        assert!(parse(
            "c",
            "kind: KubeletConfiguration\nkubeReserved:\n  memory: 5%\n"
        )
        .is_err());
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(parse("c", "\n").unwrap().hard, Some(DEFAULT_HARD));
    }

    #[test]
    fn missing_file_means_defaults() {
        let e = load(std::path::Path::new("/nonexistent/config.yaml")).unwrap();
        assert_eq!(e.hard, Some(DEFAULT_HARD));
        assert!(e.source.contains("not found"));
    }
}
