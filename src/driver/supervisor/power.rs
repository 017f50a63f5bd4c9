//! Power and disk faults: a component's files go through a `soakcheck fs` layer (the
//! sink's directory, a worker's state directory), which forgets what was never fsynced
//! when the power is cut, and returns errnos on request.
//!
//! `power-sink` and `powerN` run a loop each: the component is killed (SIGKILL), its
//! layer cuts the power (every write and entry operation not yet durable is taken
//! back), and after U(0, power_down_max) it is started again. `power-all` cuts the
//! whole cluster at once: the sink and every running worker. `disk-sink` and `diskN`
//! make one kind of operation on the component's files fail with an errno for a while.
//! Scripted steps: `power-loss` and `disk-error` (healed by `disk-heal`, or after `for`).
//!
//! How: with the local driver the layers run in this process (a FUSE session each,
//! mounted at `RUN_DIR/soakcheck-fs/<component>` over the component's own directory).
//! With a driver that reaches other hosts (ssh), each runs on its component's host as
//! `soakcheck fs --control-stdin`, started through the driver and driven over its
//! session ([`crate::fs::piped`]); the end of the run, however it ends, closes the
//! session and the layer unmounts there. A power or disk fault of a component on a host
//! no driver reaches is refused before anything starts. The checks read the
//! directories themselves, which always hold what the system sees; after a cut of the
//! sink they are told (`power-cut`), check that nothing verified committed was lost, and
//! read again.
//!
//! Characters off a terminal: `w` a power cut and `e` a disk error, each followed by
//! the component (`S` the sink, `N` worker N), `W` the whole cluster's power cut, and
//! `d` a disk error's heal.

use super::*;
use crate::fs::faults::{Errno, FaultRequest, Op};
use crate::fs::layer::Lost;
use crate::fs::piped::PipedLayer;
use crate::fs::{FsConfig, Mounted};
use crate::rundir::step::{DiskError, PowerCut};
use std::path::{Path, PathBuf};

/// What a power loop strikes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PowerLoop {
    One(Component),
    All,
}

/// The power and disk loops' timers.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PowerTimer {
    /// A power loop strikes.
    Cut(PowerLoop),
    /// The components a cut took down start again; the loop's next cut follows.
    Restart(Vec<Component>, Option<PowerLoop>),
    /// A disk loop strikes its component.
    Disk(Component),
    /// A disk error ends; a loop's next follows when `looping`.
    DiskHeal(Component, bool),
}

/// Where a component's layer runs: in this process (the component is on this machine,
/// started by the local driver), or as `soakcheck fs --control-stdin` on the
/// component's host, through the driver.
pub(super) enum Site {
    Here(Mounted),
    There(PipedLayer),
}

impl Site {
    fn lose_unsynced(&mut self) -> Result<Lost, String> {
        match self {
            Site::Here(m) => m.lose_unsynced().map_err(|e| e.to_string()),
            Site::There(p) => p.lose_unsynced(),
        }
    }

    fn add_fault(&mut self, fault: &FaultRequest) -> Result<(), String> {
        match self {
            Site::Here(m) => m.add_fault(fault),
            Site::There(p) => p.add_fault(fault),
        }
    }

    fn clear_faults(&mut self) -> Result<(), String> {
        match self {
            Site::Here(m) => {
                m.clear_faults();
                Ok(())
            }
            Site::There(p) => p.clear_faults(),
        }
    }

    /// Why the layer is gone, if it is.
    fn gone(&mut self) -> Option<String> {
        match self {
            Site::Here(_) => None,
            Site::There(p) => p.gone(),
        }
    }

    fn stop(self) -> Result<(), String> {
        match self {
            Site::Here(m) => m.stop().map(drop).map_err(|e| e.to_string()),
            Site::There(p) => p.stop().map(drop),
        }
    }
}

/// How hard [`Layers::lost`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Whether each layer's process is still there (no round trip).
    Look,
    /// And whether each layer on another host still answers (a round trip each): before
    /// a finding is recorded, since a layer killed there fails the system's files
    /// before its ssh session ends.
    Ask,
}

/// The layers of a run's components.
#[derive(Default)]
pub struct Layers(Vec<(Component, Site)>);

impl Layers {
    fn of(&mut self, c: &Component) -> Option<&mut Site> {
        self.0.iter_mut().find(|(l, _)| l == c).map(|(_, m)| m)
    }

    /// A layer that is gone mid-run (its process or its session ended): why. With
    /// `Probe::Ask` each layer on another host must also answer a command.
    pub fn lost(&mut self, probe: Probe) -> Option<String> {
        self.0.iter_mut().find_map(|(_, site)| {
            site.gone().or_else(|| match (probe, site) {
                (Probe::Ask, Site::There(p)) => p.answers(Duration::from_secs(5)).err(),
                _ => None,
            })
        })
    }

    /// Unmounts every layer (everything made durable: the end of a run is no power
    /// cut); returns what could not be unmounted.
    pub fn stop(&mut self) -> Vec<(Component, String)> {
        let mut failed = Vec::new();
        for (c, layer) in self.0.drain(..) {
            if let Err(e) = layer.stop() {
                failed.push((c, e));
            }
        }
        failed
    }
}

impl<'a> Supervisor<'a> {
    /// The directory `c` keeps its files in: the sink's, or the worker's state.
    fn files_dir(&self, c: &Component) -> PathBuf {
        match c {
            Component::Worker(n) => self
                .preset
                .state_dir()
                .join(crate::topology::worker_name(*n)),
            _ => crate::rundir::RunDir(&self.preset.run_dir).sink_dir(),
        }
    }

    /// Mounts `c`'s layer over its directory.
    fn mount_layer(&mut self, c: &Component, mount: PathBuf) -> Result<(), DriverError> {
        let failed = |detail: String| DriverError::Action {
            action: "power",
            component: c.name(),
            detail,
        };
        let backing = self.files_dir(c);
        let seed = self.plan.seed ^ (self.layers.0.len() as u64 + 1);
        let host = self.preset.hosts.of(c).to_string();
        let keep_lost = crate::rundir::RunDir(&self.preset.run_dir)
            .power_cuts_dir()
            .join(c.name());
        let argv = self.piped_layer_argv(&mount, &backing, &keep_lost, seed);
        let site = match self.driver.remote_command(c, &argv) {
            Some(command) => {
                let label = format!("the filesystem layer of {} on {host}", c.name());
                Site::There(PipedLayer::start(command, &label).map_err(failed)?)
            }
            None if !crate::driver::hosts::is_this_machine(&host) => {
                return Err(failed(format!(
                    "it runs on {host}, which this driver cannot run a filesystem layer \
                     on (the ssh driver can), so its power and disk faults would do \
                     nothing there"
                )));
            }
            None => {
                std::fs::create_dir_all(&backing)
                    .map_err(|e| failed(format!("{}: {e}", backing.display())))?;
                let cfg = FsConfig {
                    mount,
                    backing,
                    control: None,
                    seed,
                    keep_lost: Some(keep_lost),
                };
                Site::Here(Mounted::start(&cfg).map_err(|e| failed(e.to_string()))?)
            }
        };
        self.layers.0.push((c.clone(), site));
        Ok(())
    }

    /// `soakcheck fs MOUNT --backing DIR --control-stdin` on a component's host, its
    /// directory made first (as it is here before a layer mounts it).
    fn piped_layer_argv(
        &self,
        mount: &Path,
        backing: &Path,
        keep_lost: &Path,
        seed: u64,
    ) -> Vec<String> {
        let words = [
            "sh",
            "-c",
            "mkdir -p \"$0\" && exec \"$@\"",
            &backing.display().to_string(),
            &self.preset.exe.display().to_string(),
            "fs",
            &mount.display().to_string(),
            "--backing",
            &backing.display().to_string(),
            "--control-stdin",
            "--keep-lost",
            &keep_lost.display().to_string(),
            "--seed",
            &seed.to_string(),
        ];
        words.iter().map(|w| w.to_string()).collect()
    }

    /// The components one cut of `l` strikes: running, and members of the cluster.
    fn struck(&mut self, l: &PowerLoop) -> Vec<Component> {
        let all: Vec<Component> = match l {
            PowerLoop::One(c) => vec![c.clone()],
            PowerLoop::All => self.layers.0.iter().map(|(c, _)| c.clone()).collect(),
        };
        all.into_iter()
            .filter(|c| match c {
                Component::Worker(n) => self.members.contains(n),
                _ => true,
            })
            // Down on purpose (crashed or paused by another loop): that loop brings it back.
            .filter(|c| !self.down.contains_key(c))
            .filter(|c| self.driver.is_alive(c))
            .collect()
    }

    /// Kills `c` and cuts its power: its event carries what the cut took back.
    fn power_cut(&mut self, c: &Component) -> Result<(), RunFailure> {
        self.driver.kill(c)?;
        self.take_down(c);
        let lost = match self.layers.of(c) {
            Some(layer) => layer.lose_unsynced().map_err(|e| DriverError::Action {
                action: "power",
                component: c.name(),
                detail: format!("the power cut failed: {e}"),
            })?,
            None => Default::default(),
        };
        self.record_act(Act::PowerLoss(PowerCut {
            component: c.name(),
            lost_bytes: Some(lost.bytes),
            lost_files: Some(lost.files.len() as u64),
            lost_entries: Some(lost.entries.len() as u64),
            // Relative to the run dir: the evidence moves with it when a later run keeps it.
            kept: lost.kept.map(|k| {
                let run_dir = &self.preset.run_dir;
                k.strip_prefix(run_dir).unwrap_or(&k).display().to_string()
            }),
        }));
        if *c == Component::Sink {
            if let Some(checks) = &self.checks {
                let _ = checks.send(Control::PowerCut);
            }
        }
        Ok(())
    }

    /// A power loop strikes: every component it names that runs is cut, and restarted
    /// after U(0, power_down_max).
    fn power_loop(&mut self, l: PowerLoop) -> Result<(), RunFailure> {
        if !self.cluster.ready(Duration::from_millis(300)) {
            self.say(":w");
            self.schedule(secs(1.0), Due::of(PowerTimer::Cut(l)));
            return Ok(());
        }
        let struck = self.struck(&l);
        for c in &struck {
            self.power_cut(c)?;
            if l != PowerLoop::All {
                self.say(&format!("w{}", Self::short(c)));
            }
        }
        if l == PowerLoop::All {
            self.say("W");
        }
        let down = self.uniform(self.plan.timings.power_down_max);
        self.schedule(down, Due::of(PowerTimer::Restart(struck, Some(l))));
        Ok(())
    }

    fn power_restart(
        &mut self,
        cs: Vec<Component>,
        l: Option<PowerLoop>,
    ) -> Result<(), RunFailure> {
        // The sink first (workers reconnect to it), then the initializer and the workers.
        let mut cs = cs;
        cs.sort_by_key(|c| match c {
            Component::Sink => 0,
            Component::Worker(n) => 1 + n,
            Component::Sender(_) => usize::MAX,
        });
        for c in &cs {
            if self.driver.is_alive(c) {
                continue;
            }
            self.start_component(c, false)?;
            self.event(Act::Restart, c);
            self.down.remove(c);
            self.say(&format!("r{}", Self::short(c)));
            self.must_be_ready(c.clone());
        }
        if let (Some(l), None) = (l, &self.plan.replay) {
            let t = &self.plan.timings;
            let up = secs(t.power_up_min) + self.uniform(t.power_up_max - t.power_up_min);
            self.schedule(up, Due::of(PowerTimer::Cut(l)));
        }
        Ok(())
    }

    /// A disk error on `c`'s files: `fault`, for `for_s` seconds (until healed when none).
    fn disk_error(&mut self, c: &Component, d: DiskError) -> Result<(), RunFailure> {
        let request = FaultRequest {
            op: Some(d.op),
            errno: Some(d.errno),
            torn: false,
            path: d.path.clone(),
            probability: None,
            for_s: None,
        };
        let failed = |detail: String| DriverError::Action {
            action: "disk",
            component: c.name(),
            detail,
        };
        let layer = self
            .layers
            .of(c)
            .ok_or_else(|| failed("it has no filesystem layer".into()))?;
        layer.add_fault(&request).map_err(failed)?;
        let for_s = d.for_s;
        self.record_act(Act::DiskError(d));
        self.say(&format!("e{}", Self::short(c)));
        // A replay heals where the recorded heal is, not twice.
        if let (Some(f), None) = (for_s, &self.plan.replay) {
            self.schedule(secs(f), Due::of(PowerTimer::DiskHeal(c.clone(), false)));
        }
        Ok(())
    }

    /// The disk error ends. A component that stopped on it (a worker exits when its
    /// checkpoint cannot be made durable, as it should) is started again, as an
    /// operator would once the disk is replaced.
    fn disk_heal(&mut self, c: Component, looping: bool) -> Result<(), RunFailure> {
        if let Some(layer) = self.layers.of(&c) {
            layer.clear_faults().map_err(|detail| DriverError::Action {
                action: "disk",
                component: c.name(),
                detail: format!("the heal failed: {detail}"),
            })?;
        }
        self.record_act(Act::DiskHeal(Target {
            component: c.name(),
        }));
        self.say(&format!("d{}", Self::short(&c)));
        let member = match &c {
            Component::Worker(n) => self.members.contains(n),
            _ => true,
        };
        if member && !self.down.contains_key(&c) && !self.driver.is_alive(&c) {
            let _ = writeln!(
                self.out,
                "\n{} stopped on its disk error: restarting it",
                c.name()
            );
            self.start_component(&c, false)?;
            self.event(Act::Restart, &c);
            self.say(&format!("r{}", Self::short(&c)));
            self.must_be_ready(c.clone());
        }
        if looping && self.plan.replay.is_none() {
            let up = self.uniform(self.plan.timings.disk_up_max);
            self.schedule(up, Due::of(PowerTimer::Disk(c)));
        }
        Ok(())
    }

    /// A disk loop's fault: one of the operations fails with one of the errnos, for
    /// U(0.1, disk_down_max) s.
    fn disk_loop(&mut self, c: Component) -> Result<(), RunFailure> {
        const OPS: [Op; 5] = [Op::Write, Op::Fsync, Op::Open, Op::Create, Op::Rename];
        const ERRNOS: [Errno; 4] = [Errno::EIO, Errno::ENOSPC, Errno::EDQUOT, Errno::EROFS];
        let op = OPS[self.rng.range(0, OPS.len() as u64 - 1) as usize];
        let errno = ERRNOS[self.rng.range(0, ERRNOS.len() as u64 - 1) as usize];
        let down = secs(0.1) + self.uniform(self.plan.timings.disk_down_max);
        let d = DiskError {
            component: c.name(),
            op,
            errno,
            path: None,
            for_s: Some(down.as_secs_f64()),
        };
        let request = d.clone();
        self.disk_error(
            &c,
            DiskError {
                for_s: None,
                ..request
            },
        )?;
        self.schedule(down, Due::of(PowerTimer::DiskHeal(c, true)));
        Ok(())
    }

    /// A scripted power loss, disk error or heal.
    fn scripted_disk(&mut self, step: &Step) -> Result<(), RunFailure> {
        let Some(c) = Self::step_component(step) else {
            return Ok(());
        };
        match &step.act {
            Act::PowerLoss(_) if !self.driver.is_alive(&c) => {
                self.skip_step(step, "it is not running");
            }
            Act::PowerLoss(_) => {
                self.power_cut(&c)?;
                self.say(&format!("w{}", Self::short(&c)));
                // A replay restarts it where the recorded restart is.
                if self.plan.replay.is_none() {
                    let restart = PowerTimer::Restart(vec![c], None);
                    self.schedule(Duration::ZERO, Due::of(restart));
                }
            }
            Act::DiskError(d) => self.disk_error(&c, d.clone())?,
            _ => self.disk_heal(c, false)?,
        }
        Ok(())
    }
}

/// `power-sink`, `powerN`, `power-all`, `disk-sink`, `diskN`, and the scripted
/// `power-loss`, `disk-error` and `disk-heal`.
pub(super) struct PowerLoops;

impl super::family::FaultFamily for PowerLoops {
    type Timer = PowerTimer;

    /// Mounts a layer for every component a power or disk fault names.
    fn prepare(&self, sup: &mut Supervisor<'_>) -> Result<(), DriverError> {
        let Some(fs) = sup.preset.fs.clone() else {
            return Ok(());
        };
        for c in &fs.components {
            let mount = fs.mount_of(c).expect("listed");
            sup.mount_layer(c, mount)?;
        }
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        let t = sup.plan.timings.clone();
        let first = |sup: &mut Supervisor<'_>| {
            secs(t.start_delay + t.power_up_min) + sup.uniform(t.power_up_max - t.power_up_min)
        };
        for c in sup.plan.scenario.powers.clone() {
            let d = first(sup);
            sup.schedule(d, Due::of(PowerTimer::Cut(PowerLoop::One(c))));
        }
        if sup.plan.scenario.power_all {
            let d = first(sup);
            sup.schedule(d, Due::of(PowerTimer::Cut(PowerLoop::All)));
        }
        for c in sup.plan.scenario.disks.clone() {
            let d = secs(t.start_delay) + sup.uniform(t.disk_up_max);
            sup.schedule(d, Due::of(PowerTimer::Disk(c)));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, timer: PowerTimer) -> Result<(), RunFailure> {
        match timer {
            PowerTimer::Cut(l) => sup.power_loop(l),
            PowerTimer::Restart(cs, l) => sup.power_restart(cs, l),
            PowerTimer::Disk(c) => sup.disk_loop(c),
            PowerTimer::DiskHeal(c, looping) => sup.disk_heal(c, looping),
        }
    }

    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        step.action().is_disk().then(|| sup.scripted_disk(step))
    }
}
