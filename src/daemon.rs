//! The live pipeline: kmsg records in; kills decoded, named, attributed,
//! counted and logged; state saved so that a restart neither drops nor
//! double-counts a kill.

use crate::attribution::{Attribution, Attributor};
use crate::cgroup::Memory;
use crate::decode::{Decoder, Event, Kill};
use crate::event::{KillEvent, Source};
use crate::metrics::Shared;
use crate::names::Resolver;
use crate::podref::{self, Scope};
use crate::state::{Counters, Store};
use std::io::Write;
use std::path::PathBuf;

/// A kill in, a verdict and its reason out.
pub type Judge = Box<dyn FnMut(&Kill) -> Option<(String, String)> + Send>;

pub struct Config {
    pub node: Option<String>,
    pub json: bool,
    /// Records up to this sequence number were handled by an earlier run.
    pub resume_seq: Option<u64>,
    /// Kernel time at start: older kills were in the ring already.
    pub start_uptime: Option<f64>,
    /// Unix time of boot.
    pub boot_time: f64,
    /// Attribute kills by live cgroup counters (not when replaying a file).
    pub live: bool,
    pub runtime_dirs: Vec<PathBuf>,
}

pub struct Processor<W: Write> {
    cfg: Config,
    decoder: Decoder,
    counters: Shared,
    store: Option<Store>,
    resolver: Resolver,
    attributor: Attributor,
    mem: Option<Memory>,
    last_seq: Option<u64>,
    out: W,
    dirty: bool,
    /// Called for each kill: why the kubelet did not evict instead.
    pub judge: Option<Judge>,
}

impl<W: Write> Processor<W> {
    pub fn new(
        cfg: Config,
        counters: Shared,
        store: Option<Store>,
        resolver: Resolver,
        mem: Option<Memory>,
        out: W,
    ) -> Self {
        // Resumed on the same boot: the saved model explains what we counted,
        // so kills made while we were down show up as unexplained.
        let saved = counters
            .lock()
            .ok()
            .filter(|_| cfg.resume_seq.is_some())
            .map(|c| c.oom_kill_model.clone().into_iter().collect());
        let attributor = Attributor::new(if cfg.live { mem.clone() } else { None }, saved);
        Processor {
            cfg,
            decoder: Decoder::new(),
            counters,
            store,
            resolver,
            attributor,
            mem,
            last_seq: None,
            out,
            dirty: false,
            judge: None,
        }
    }

    fn counts(&self, seq: Option<u64>) -> bool {
        match (seq, self.cfg.resume_seq) {
            (Some(s), Some(h)) => s > h,
            _ => true,
        }
    }

    /// One kmsg record. `seq` None: a line rmesg could not read as a record.
    pub fn record(&mut self, seq: Option<u64>, usec: u64, kernel: bool, text: &str) {
        let counted = self.counts(seq);
        if let Some(s) = seq {
            let prev = self.last_seq.or(self.cfg.resume_seq);
            if counted {
                let mut c = self.lock();
                c.records += 1;
                match prev {
                    Some(p) if s > p + 1 => c.lost += s - p - 1,
                    // The ring had already dropped the first records of this boot.
                    None if s > 0 => c.lost += s,
                    _ => {}
                }
                drop(c);
                self.dirty = true;
            }
            self.last_seq = Some(s.max(self.last_seq.unwrap_or(0)));
            self.decoder.feed_kmsg(s, usec, kernel, text);
        }
        // No sequence number: a dictionary line (` KEY=value`) is normal;
        // anything else is not a kmsg record.
        if seq.is_none() && counted && !text.starts_with(' ') {
            self.lock().unreadable += 1;
        }
        self.drain(counted);
        if counted {
            if let Some(s) = seq {
                self.lock().handled_seq = Some(s);
            }
        }
    }

    /// A line that is not a kmsg record.
    pub fn unreadable(&mut self) {
        self.lock().unreadable += 1;
        self.dirty = true;
    }

    /// End of a replayed file: close the open report.
    pub fn finish(&mut self) {
        self.decoder.finish();
        self.drain(true);
    }

    fn drain(&mut self, counted: bool) {
        let unparsed = std::mem::take(&mut self.decoder.stats.unparsed);
        if counted && unparsed > 0 {
            self.lock().unreadable += unparsed;
        }
        let events: Vec<Event> = self.decoder.drain().collect();
        for ev in events {
            match ev {
                Event::Kill(k) if self.counts(k.seq) => self.kill(*k),
                Event::Incomplete(i) if counted => {
                    self.lock().incomplete += 1;
                    self.dirty = true;
                    let _ = writeln!(
                        self.out,
                        "{}OOM report without a kill line at [{:.6}] ({}){}",
                        self.cfg
                            .node
                            .as_deref()
                            .map(|n| format!("{n} "))
                            .unwrap_or_default(),
                        i.kernel_time.unwrap_or(0.0),
                        i.reason,
                        i.trigger
                            .map(|t| format!(", triggered by {t}"))
                            .unwrap_or_default()
                    );
                }
                _ => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kill(&mut self, mut k: Kill) {
        let replayed = self
            .cfg
            .start_uptime
            .zip(k.kernel_time)
            .is_some_and(|(s, t)| t < s);
        let mut source = if k.task_memcg.is_some() {
            Source::Report
        } else {
            Source::None
        };
        if let Some(t) = k.task_memcg.clone() {
            self.attributor.explain(&t);
        } else if k.cgroup_scope.is_none()
            && (!replayed || self.cfg.resume_seq.is_some())
            && self.attributor.available()
        {
            match self.attributor.attribute() {
                Attribution::Exact(path) => {
                    set_identity(&mut k, &path);
                    k.task_memcg = Some(path);
                    source = Source::KillCounter;
                }
                Attribution::Pod(path) => {
                    set_identity(&mut k, &path);
                    source = Source::KillCounterPod;
                }
                Attribution::Unknown { .. } => {}
            }
        }
        let names = self
            .resolver
            .lookup(k.pod_uid.as_deref(), k.container_id.as_deref());
        if let Some((v, r)) = self.judge.as_mut().and_then(|j| j(&k)) {
            k.verdict = Some(v);
            k.verdict_reason = Some(r);
        }
        let time = self.cfg.boot_time + k.kernel_time.unwrap_or(0.0);
        let role = self.victim_role(&k);
        let mut ev = KillEvent::new(&k, names, self.cfg.node.as_deref(), time);
        ev.replayed = replayed;
        ev.cgroup_source = source;
        ev.victim_role = role;
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ev.emit(&mut c, &mut self.out, self.cfg.json);
        c.oom_kill_model = self.attributor.snapshot();
        let _ = self.out.flush();
        if let Some(s) = k.seq {
            c.handled_seq = Some(s);
        }
        // Saved at once: a crash after this line cannot count the kill twice.
        if let Some(store) = &self.store {
            if let Err(e) = store.save(&c) {
                tracing::warn!("{e}");
            }
        }
        drop(c);
        self.dirty = false;
    }

    /// Main process or a child: the runtime's `init.pid` says for sure;
    /// otherwise, other processes left in the container mean a child died.
    fn victim_role(&self, k: &Kill) -> Option<&'static str> {
        if k.cgroup_scope != Some(Scope::Container) {
            return None;
        }
        if let Some(id) = &k.container_id {
            for d in &self.cfg.runtime_dirs {
                if let Ok(p) = std::fs::read_to_string(d.join(id).join("init.pid")) {
                    return Some(if p.trim() == k.pid.to_string() {
                        "main"
                    } else {
                        "child"
                    });
                }
            }
        }
        let (mem, cg) = (self.mem.as_ref()?, k.task_memcg.as_ref()?);
        let procs = std::fs::read_to_string(mem.dir(cg).join("cgroup.procs")).ok()?;
        let others = procs
            .lines()
            .filter(|l| l.trim() != k.pid.to_string() && !l.trim().is_empty())
            .count();
        Some(if others > 0 { "child" } else { "main" })
    }

    /// Periodic work: save, forget gone pods, learn names.
    pub fn tick(&mut self, now: f64, forget_after: f64) {
        self.resolver.scan();
        let mem = self.mem.clone();
        let forgotten = self.lock().forget(now, forget_after, |cg| {
            mem.as_ref().is_none_or(|m| m.dir(cg).is_dir())
        });
        if forgotten > 0 {
            self.dirty = true;
            tracing::info!(
                "forgot {forgotten} series of pods gone for longer than {forget_after}s"
            );
        }
        self.save_if_dirty();
    }

    pub fn save_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        if let Some(store) = &self.store {
            let mut c = self.lock().clone();
            c.oom_kill_model = self.attributor.snapshot();
            if let Err(e) = store.save(&c) {
                tracing::warn!("{e}");
            }
        }
        self.dirty = false;
    }
}

fn set_identity(k: &mut Kill, path: &str) {
    let id = podref::identify(path);
    k.cgroup_scope = id.scope;
    k.pod_uid = id.pod_uid;
    k.container_id = id.container_id;
    k.runtime = id.runtime;
    k.qos = id.qos;
    k.check_qos();
}
