#!/usr/bin/env python3
"""Write grafana/oomwatch.json: the oomwatch dashboard for Grafana 10/11.

Every panel uses the ${DS_PROMETHEUS} input, has a unit and a one-sentence
description; queries use $__rate_interval / $__range so they stay cheap.
Run it after changing a panel; tests/grafana.rs checks the result against a
real Prometheus."""
import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'instance=~"$node"'
KSEL = 'instance=~"$node",namespace=~"$namespace",qos_class=~"$qos"'
panels = []


def panel(kind, title, desc, unit, targets, x, y, w=12, h=8, **extra):
    p = {
        "id": len(panels) + 1,
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l, **({"instant": True, "format": "table"} if kind == "table" else {})}
            for i, (e, l) in enumerate(targets)
        ],
    }
    p.update(extra)
    panels.append(p)






def stacked(p):
    p["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "normal"}, "drawStyle": "bars", "fillOpacity": 80}
    return p


panel("timeseries", "OOM kills by QoS class", "Processes the kernel OOM-killed, stacked by the victim pod's QoS class (host: not a pod).", "short",
      [(f'sum by (qos_class) (increase(oomwatch_oom_kills_total{{{KSEL}}}[$__rate_interval]))', "{{qos_class}}")], 0, 0)
stacked(panels[-1])
panel("timeseries", "OOM kills by cause", "Global OOMs (the node ran out) against cgroup-limit kills (memcg, cpuset, memory policy).", "short",
      [(f'sum by (constraint) (increase(oomwatch_oom_kills_total{{{KSEL}}}[$__rate_interval]))', "{{constraint}}")], 12, 0)
stacked(panels[-1])
panel("table", "Top OOM-killed containers", "Containers with the most OOM kills in the time range, with their QoS class and the time of their last kill.", "short",
      [(f'topk(20, sum by (instance, namespace, pod, container, qos_class) (increase(oomwatch_oom_kills_total{{{KSEL}}}[$__range])))', ""),
       (f'max by (instance, namespace, pod, container) (oomwatch_last_oom_kill_timestamp_seconds{{{SEL},namespace=~"$namespace"}}) * 1000', "")],
      0, 8, w=24, h=8,
      transformations=[{"id": "merge", "options": {}}],
      fieldConfig={"defaults": {"unit": "short"}, "overrides": [
          {"matcher": {"id": "byName", "options": "Value #A"}, "properties": [{"id": "displayName", "value": "kills"}, {"id": "unit", "value": "short"}]},
          {"matcher": {"id": "byName", "options": "Value #B"}, "properties": [{"id": "displayName", "value": "last kill"}, {"id": "unit", "value": "dateTimeAsIso"}]}]})
panel("timeseries", "Eviction picture: memory.available and thresholds", "memory.available as the kubelet computes it, against its hard and soft eviction thresholds; allocatable and MemAvailable for comparison.", "bytes",
      [(f'oomwatch_memory_available_bytes{{{SEL}}}', "memory.available {{instance}}"),
       (f'oomwatch_eviction_threshold_bytes{{{SEL},signal="memory.available"}}', "{{kind}} threshold {{instance}}"),
       (f'oomwatch_allocatable_memory_available_bytes{{{SEL}}}', "allocatable available {{instance}}"),
       (f'oomwatch_meminfo_available_bytes{{{SEL}}}', "MemAvailable {{instance}}")], 0, 16)
panel("timeseries", "Memory pressure (PSI)", "Share of time some or all tasks stalled waiting for memory.", "percentunit",
      [(f'rate(oomwatch_memory_pressure_seconds_total{{{SEL}}}[$__rate_interval])', "{{kind}} {{instance}}")], 12, 16)
panel("timeseries", "Why the kubelet did not evict", "Each OOM kill's verdict: a cgroup limit, node allocatable, eviction too slow, or below the eviction radar.", "short",
      [(f'sum by (verdict) (increase(oomwatch_oom_kill_verdicts_total{{{SEL}}}[$__rate_interval]))', "{{verdict}}")], 0, 24)
stacked(panels[-1])
panel("bargauge", "Victim memory at kill", "How much anonymous memory the OOM victims held when killed, by QoS class, in the time range.", "short",
      [(f'sum by (le, qos_class) (increase(oomwatch_oom_victim_anon_rss_bytes_bucket{{{SEL},qos_class=~"$qos"}}[$__range]))', "{{qos_class}} <= {{le}}")], 12, 24,
      options={"displayMode": "gradient", "orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}})
panel("stat", "oomwatch up", "Whether Prometheus reaches oomwatch on each node.", "short",
      [(f'up{{{SEL},job=~"$job"}}', "{{instance}}")], 0, 32, w=6, h=6)
panel("timeseries", "Lost kernel records", "Kernel log records the ring overwrote before oomwatch read them: kills among them are lost.", "short",
      [(f'increase(oomwatch_kmsg_records_lost_total{{{SEL}}}[$__rate_interval])', "{{instance}}")], 6, 32, w=6, h=6)
panel("timeseries", "Incomplete, unattributed, unreadable", "OOM reports without a kill line, kills whose cgroup was not found, lines that could not be read.", "short",
      [(f'increase(oomwatch_oom_reports_incomplete_total{{{SEL}}}[$__rate_interval])', "incomplete {{instance}}"),
       (f'increase(oomwatch_oom_kills_unattributed_total{{{SEL}}}[$__rate_interval])', "unattributed {{instance}}"),
       (f'increase(oomwatch_unreadable_lines_total{{{SEL}}}[$__rate_interval])', "unreadable {{instance}}")], 12, 32, w=6, h=6)
panel("stat", "oomwatch restarts", "How often oomwatch restarted in the time range (its counters continue across restarts).", "short",
      [(f'changes(process_start_time_seconds{{{SEL},job=~"$job"}}[$__range])', "{{instance}}")], 18, 32, w=6, h=6)


def var(name, label, query, include_all=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS, "query": {"query": query, "refId": name},
            "definition": query, "refresh": 2, "includeAll": include_all, "multi": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1}


dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "The Prometheus that scrapes oomwatch.", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"}, {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
    "title": "oomwatch: OOM kills on Kubernetes nodes",
    "description": "Which pods the kernel OOM-killed, why, and why the kubelet did not evict them first.",
    "uid": "oomwatch",
    "editable": True,
    "schemaVersion": 39,
    "version": 1,
    "tags": ["kubernetes", "oom", "memory"],
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "1m",
    "timezone": "",
    "templating": {"list": [
        var("job", "Job", "label_values(oomwatch_build_info, job)"),
        var("node", "Node", 'label_values(oomwatch_build_info{job=~"$job"}, instance)'),
        var("namespace", "Namespace", 'label_values(oomwatch_oom_kills_total{instance=~"$node"}, namespace)'),
        var("qos", "QoS class", "label_values(oomwatch_oom_kills_total, qos_class)"),
    ]},
    "annotations": {"list": [{
        "name": "OOM kills", "datasource": DS, "enable": True, "iconColor": "red",
        "expr": 'changes(oomwatch_last_oom_kill_timestamp_seconds{instance=~"$node",namespace=~"$namespace"}[2m]) > 0',
        "titleFormat": "OOM kill", "textFormat": "{{namespace}}/{{pod}} {{container}}", "step": "60s"}]},
    "panels": panels,
}
Path(__file__).with_name("oomwatch.json").write_text(json.dumps(dash, indent=2) + "\n")
