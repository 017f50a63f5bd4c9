//! The supervisor driven by a fake clock, driver and cluster: schedules, loops,
//! findings, freezes and stops, without a process or a second of waiting.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use super::*;

struct FakeClock(Cell<Instant>);

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.0.get()
    }

    /// A fixed start, so events.jsonl is a function of the seed.
    fn unix_now(&self) -> f64 {
        1_800_000_000.0
    }
}

/// What the fake driver did and what it will answer, shared with the test.
#[derive(Default)]
struct DriverState {
    calls: Vec<String>,
    alive: BTreeSet<Component>,
    exits: BTreeMap<Component, i32>,
    /// Pausing these fails.
    unpausable: BTreeSet<Component>,
    grace: Vec<Duration>,
}

/// Records every action; components live until killed or stopped.
#[derive(Default, Clone)]
struct FakeDriver(Rc<RefCell<DriverState>>);

impl std::ops::Deref for FakeDriver {
    type Target = RefCell<DriverState>;
    fn deref(&self) -> &RefCell<DriverState> {
        &self.0
    }
}

impl ProcessDriver for FakeDriver {
    fn start(&mut self, c: &Component, _spec: &LaunchSpec) -> Result<(), DriverError> {
        self.borrow_mut().calls.push(format!("start {}", c.name()));
        self.borrow_mut().alive.insert(c.clone());
        Ok(())
    }
    fn kill(&mut self, c: &Component) -> Result<(), DriverError> {
        self.borrow_mut().calls.push(format!("kill {}", c.name()));
        self.borrow_mut().alive.remove(c);
        Ok(())
    }
    fn pause(&mut self, c: &Component) -> Result<(), DriverError> {
        self.borrow_mut().calls.push(format!("pause {}", c.name()));
        if self.borrow().unpausable.contains(c) {
            return Err(DriverError::Action {
                action: "pause",
                component: c.name(),
                detail: "ssh: connection refused".into(),
            });
        }
        Ok(())
    }
    fn resume(&mut self, c: &Component) -> Result<(), DriverError> {
        self.borrow_mut().calls.push(format!("resume {}", c.name()));
        Ok(())
    }
    fn is_alive(&mut self, c: &Component) -> bool {
        self.borrow().alive.contains(c)
    }
    fn exited(&mut self, c: &Component) -> Option<i32> {
        let code = self.borrow_mut().exits.remove(c)?;
        self.borrow_mut().alive.remove(c);
        Some(code)
    }
    fn stop(&mut self, c: &Component, grace: Duration) -> Result<(), DriverError> {
        self.borrow_mut().calls.push(format!("stop {}", c.name()));
        self.borrow_mut().grace.push(grace);
        self.borrow_mut().alive.remove(c);
        Ok(())
    }
    fn started(&self) -> Vec<Component> {
        self.borrow().alive.iter().cloned().collect()
    }
    fn locate(&self, c: &Component) -> Option<String> {
        Some(format!("fake {}", c.name()))
    }
    fn placement(&self, _c: &Component) -> Option<crate::driver::Placement> {
        None
    }

    fn describe(&self) -> crate::driver::DriverRecord {
        crate::driver::DriverRecord::default()
    }

    fn recorded(
        &mut self,
        _placement: &crate::driver::Placement,
        _act: crate::driver::RecordedAct,
    ) -> Result<bool, DriverError> {
        Ok(false)
    }

    fn survivors(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Every component is a child on this machine.
    fn remote_command(&self, _on: &Component, _argv: &[String]) -> Option<std::process::Command> {
        None
    }

    /// Exits arrive as SIGCHLD.
    fn watch_exits(&mut self, _wakes: crossbeam_channel::Sender<crate::driver::Wake>) {}

    fn fetch(
        &mut self,
        _host_of: &Component,
        _remote: &std::path::Path,
        _local: &std::path::Path,
    ) -> Result<crate::driver::Fetched, DriverError> {
        Ok(crate::driver::Fetched::AlreadyLocal)
    }
}

/// Ready or not, as the test sets it, with a log whose size the test sets too.
struct FakeCluster {
    ready: Rc<Cell<bool>>,
    log: Rc<Cell<u64>>,
}

impl Cluster for FakeCluster {
    fn ready(&self, _timeout: Duration) -> bool {
        self.ready.get()
    }
    fn component_ready(&self, _c: &Component, _live: &[usize]) -> bool {
        self.ready.get()
    }
    fn shrink(&self, _n: usize) -> bool {
        true
    }
    fn progress(&self, c: &Component) -> Progress {
        Progress {
            listening: Some((format!("{}:1", c.name()), true)),
            log: Some((format!("its log {}.log", c.name()), self.log.get())),
            txnlog_bytes: Some(0),
        }
    }
}

fn preset() -> Preset {
    crate::driver::preset::test_demo(7100, &['A', 'B'])
}

fn plan(args: &[&str]) -> SoakPlan {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let scenario = Scenario::parse("3", &args, None).unwrap();
    SoakPlan {
        timings: scenario.timings.clone(),
        scenario,
        seed: 7,
        keys: vec!['A', 'B'],
        replay: None,
        duration: None,
        progress: ProgressStyle::Terse,
        continue_on_finding: false,
    }
}

/// A supervisor over fakes, at a fake time zero.
struct Rig {
    clock: FakeClock,
    driver: FakeDriver,
    cluster: FakeCluster,
    out: Vec<u8>,
    events: Vec<u8>,
    preset: Preset,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            clock: FakeClock(Cell::new(Instant::now())),
            driver: FakeDriver::default(),
            cluster: FakeCluster {
                ready: Rc::new(Cell::new(true)),
                log: Rc::new(Cell::new(0)),
            },
            out: Vec::new(),
            events: Vec::new(),
            preset: preset(),
        }
    }

    fn supervisor<'a>(&'a mut self, plan: &'a SoakPlan) -> (Supervisor<'a>, &'a FakeClock) {
        let sup = Supervisor::new(
            plan,
            &self.preset,
            &self.clock,
            &mut self.driver,
            &self.cluster,
            None,
            &mut self.out,
            Some(&mut self.events),
        );
        (sup, &self.clock)
    }
}

/// Moves the fake clock from timer to timer until `limit` after the start, or an
/// ending.
fn drive(sup: &mut Supervisor<'_>, clock: &FakeClock, limit: Duration) -> Option<Ending> {
    let end = clock.now() + limit;
    while let Some(at) = sup.next_deadline() {
        if at > end {
            break;
        }
        clock.0.set(at.max(clock.now()));
        if let Some(ending) = sup.fire_due().unwrap() {
            return Some(ending);
        }
    }
    clock.0.set(end);
    None
}

#[test]
fn start_waits_for_the_cluster_then_starts_senders_and_the_loops() {
    let p = plan(&["crash1", "crash-sink"]);
    let mut rig = Rig::new();
    rig.cluster.ready.set(false);
    let ready = rig.cluster.ready.clone();
    let rig_driver = rig.driver.clone();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(1));
    let senders_started = |d: &FakeDriver| {
        d.borrow()
            .calls
            .iter()
            .any(|c| c.starts_with("start sender"))
    };
    assert!(
        !senders_started(&rig_driver),
        "no senders before the cluster is ready"
    );
    ready.set(true);
    drive(&mut sup, clock, Duration::from_millis(150));
    assert!(senders_started(&rig_driver));
    let pending: Vec<Due> = sup.pending().into_iter().map(|(_, d)| d).collect();
    assert!(pending.contains(&Due::of(crash::CrashTimer::Crash(Component::Sink))));
    assert!(pending.contains(&Due::of(crash::CrashTimer::Crash(Component::Worker(1)))));
    drop(sup);
    assert_eq!(
        &rig.driver.borrow().calls[..6],
        [
            "start sink",
            "start initializer",
            "start worker1",
            "start worker2",
            "start sender-A",
            "start sender-B"
        ]
    );
}

#[test]
fn startup_gives_up_after_its_deadline() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    rig.cluster.ready.set(false);
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    let end = clock.now() + Duration::from_secs(20);
    let mut failure = None;
    while let Some(at) = sup.next_deadline() {
        if at > end {
            break;
        }
        clock.0.set(at);
        if let Err(e) = sup.fire_due() {
            failure = Some(e.to_string());
            break;
        }
    }
    let failure = failure.expect("a setup failure");
    assert!(failure.contains("not ready within 15 s"), "{failure}");
}

/// A soak of `args` whose cluster goes not ready after 100 ms for `not_ready`, then
/// ready for 2 s: what it printed and what the driver was asked.
fn stabilization(args: &[&str], not_ready: Duration) -> (String, Vec<String>) {
    let p = plan(args);
    let mut rig = Rig::new();
    let ready = rig.cluster.ready.clone();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_millis(100));
    ready.set(false);
    drive(&mut sup, clock, not_ready);
    ready.set(true);
    drive(&mut sup, clock, Duration::from_secs(2));
    drop(sup);
    let calls = rig.driver.borrow().calls.clone();
    (String::from_utf8(rig.out).unwrap(), calls)
}

/// The crash loops: each crash is followed by a restart, the restart by the next crash,
/// and the timings are the scenario's; a not-ready cluster makes a loop skip (`:c1`).
#[test]
fn crash_loops_alternate_and_stabilize() {
    let p = plan(&["crash1"]);
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    assert_eq!(drive(&mut sup, clock, Duration::from_secs(60)), None);
    let faults = sup.fault_count;
    drop(sup);
    let calls = rig.driver.borrow().calls.clone();
    let crashes = calls.iter().filter(|c| *c == "kill worker1").count();
    let restarts = calls.iter().filter(|c| *c == "start worker1").count();
    assert!(crashes >= 10, "{crashes} crashes in 60 s at U(0,4)+U(0,4)");
    assert_eq!(faults, crashes as u64);
    assert!(restarts == crashes || restarts == crashes + 1);
    let events = String::from_utf8(rig.events.clone()).unwrap();
    assert_eq!(events.lines().count(), crashes + restarts - 1);
    // Stabilization: with the cluster not ready, the loop skips and says so.
    // It strikes only once the cluster is ready again: its first `c1` is a `:c1`.
    let (out, calls) = stabilization(&["crash1"], Duration::from_secs(30));
    assert_eq!(out.find("c1"), out.find(":c1").map(|i| i + 1), "{out}");
    assert!(calls.contains(&"kill worker1".to_string()));
    // The same for the sink's loop, with `:s`.
    let (out, calls) = stabilization(&["crash-sink"], Duration::from_secs(10));
    assert!(out.contains(":s") && out.contains("cS"), "{out}");
    assert!(out.find(":s") < out.find("cS"), "{out}");
    assert!(calls.contains(&"kill sink".to_string()));
}

/// The source loop kills a live sender (`cs`) and restarts it 0.1 s later, silently,
/// as the original prints it.
#[test]
fn the_source_loop_prints_as_the_original() {
    let p = plan(&["crash-source"]);
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(20));
    drop(sup);
    let out = String::from_utf8(rig.out).unwrap();
    // Each sender crash names its key (`csA`), which the original's `cs` did not.
    let named = out.matches("cs").count();
    assert!(named > 0 && named == out.matches("csA").count() + out.matches("csB").count());
    assert!(!out.contains("rs"), "{out}");
    let calls = rig.driver.borrow().calls.clone();
    let kills = calls
        .iter()
        .filter(|c| c.starts_with("kill sender"))
        .count();
    let starts = calls
        .iter()
        .filter(|c| c.starts_with("start sender"))
        .count();
    assert!(kills >= 3 && starts > kills, "{calls:?}");
}

/// A fake proxy: its links, and every fault applied.
#[derive(Default)]
struct FakeNetwork {
    applied: std::cell::RefCell<Vec<(String, crate::proxy::Fault)>>,
}

impl Network for FakeNetwork {
    fn links(&self) -> Vec<String> {
        [
            "sender-A->initializer",
            "sender-B->worker1",
            "initializer->sink",
            "worker1->sink",
            "worker2->sink",
            "worker7->sink",
            "worker1->initializer",
        ]
        .map(String::from)
        .to_vec()
    }

    fn apply(&self, link: &str, fault: crate::proxy::Fault) -> Result<(), String> {
        self.applied.borrow_mut().push((link.to_string(), fault));
        Ok(())
    }
}

#[test]
fn network_loops_strike_their_links_of_the_cluster_and_heal_them() {
    use crate::proxy::Fault;
    let p = plan(&["net-sink", "net-source"]);
    let network = FakeNetwork::default();
    let mut rig = Rig::new();
    let (sup, clock) = rig.supervisor(&p);
    let mut sup = sup.with_network(&network);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(120));
    let faults = sup.fault_count;
    drop(sup);
    let applied = network.applied.borrow().clone();
    let struck: Vec<&(String, Fault)> = applied.iter().filter(|(_, f)| *f != Fault::Heal).collect();
    assert!(struck.len() >= 10, "{applied:?}");
    assert_eq!(faults as usize, struck.len());
    // Only the loops' scopes, and only links of workers in the cluster.
    for (link, _) in &applied {
        assert!(
            link.ends_with("->sink") || link.starts_with("sender-"),
            "{link}"
        );
        assert_ne!(link, "worker7->sink", "a worker that is not in the cluster");
    }
    // Each loop heals its fault before its next one.
    for scope in [NetScope::Sink, NetScope::Source] {
        let mine: Vec<bool> = applied
            .iter()
            .filter(|(l, _)| scope.covers(l))
            .map(|(_, f)| *f == Fault::Heal)
            .collect();
        assert!(mine.windows(2).all(|w| w[0] != w[1]), "{scope:?}: {mine:?}");
    }
    let out = String::from_utf8(rig.out).unwrap();
    assert!(out.contains("nS") && out.contains("hS"), "{out}");
    assert!(out.contains("nsA") || out.contains("nsB"), "{out}");
    let events = String::from_utf8(rig.events).unwrap();
    assert!(
        events.contains(r#""link":"worker1->sink""#)
            || events.contains(r#""link":"worker2->sink""#),
        "{events}"
    );
}

#[test]
fn a_scripted_partition_heals_after_its_for_and_needs_the_proxy() {
    use crate::proxy::Fault;
    let mut p = plan(&[]);
    let step = Step {
        at: 5.0,
        act: Act::Partition(crate::rundir::step::Net {
            component: "worker1".into(),
            link: "worker1->sink".into(),
            for_s: Some(2.0),
        }),
    };
    p.scenario.steps.push(step);
    let network = FakeNetwork::default();
    let mut rig = Rig::new();
    let (sup, clock) = rig.supervisor(&p);
    let mut sup = sup.with_network(&network);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(6));
    assert_eq!(network.applied.borrow().len(), 1);
    drive(&mut sup, clock, Duration::from_secs(2));
    drop(sup);
    assert_eq!(
        *network.applied.borrow(),
        vec![
            ("worker1->sink".to_string(), Fault::Partition),
            ("worker1->sink".to_string(), Fault::Heal)
        ]
    );
    // Without a proxy the step cannot be carried out: a setup failure, not a no-op.
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    let end = clock.now() + Duration::from_secs(10);
    let mut failed = false;
    while let Some(at) = sup.next_deadline().filter(|&a| a <= end) {
        clock.0.set(at.max(clock.now()));
        if let Err(RunFailure::Setup(text)) = sup.fire_due() {
            failed = text.contains("fault proxy");
            break;
        }
    }
    assert!(failed, "a network step without a proxy fails the setup");
}

/// The same seed gives the same schedule: the loops draw from one seeded RNG.
#[test]
fn the_schedule_is_a_function_of_the_seed() {
    let schedule = |seed: u64| {
        let mut p = plan(&["crash0", "crash1", "crash-sink", "crash-source", "pause"]);
        p.seed = seed;
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(40));
        drop(sup);
        rig.events
    };
    assert_eq!(schedule(3), schedule(3));
    assert_ne!(schedule(3), schedule(4));
}

#[test]
fn a_finding_ends_the_soak_and_freeze_says_what_it_did_per_component() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    rig.driver
        .borrow_mut()
        .unpausable
        .insert(Component::Worker(2));
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(1));
    let finding = Finding {
        kind: FindingKind::Violation,
        key: Some("A".into()),
        detail: "key A breaks".into(),
        elapsed_s: 1.0,
    };
    assert_eq!(sup.handle_check(CheckEvent::Progress(b",".to_vec())), None);
    assert_eq!(
        sup.handle_check(CheckEvent::Finding(finding)),
        Some(Ending::Found)
    );
    let results = sup.freeze();
    assert_eq!(results.len(), 6);
    let failed: Vec<&FreezeResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].component, Component::Worker(2));
    assert!(failed[0]
        .outcome
        .as_ref()
        .unwrap_err()
        .contains("connection refused"));
    assert_eq!(results[0].location.as_deref(), Some("fake sink"));
}

#[test]
fn a_lost_checker_is_a_finding() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    let (mut sup, _clock) = rig.supervisor(&p);
    let ending = sup.handle_check(CheckEvent::Lost("ssh exited with status 255".into()));
    assert_eq!(ending, Some(Ending::Found));
    assert_eq!(sup.findings[0].kind, FindingKind::CheckerLost);
}

/// Stop order is senders, workers, sink; a second interrupt cuts the grace period to
/// nothing for the rest.
#[test]
fn stop_goes_senders_first_and_a_second_interrupt_hurries_it() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    let (wake_tx, wakes) = crossbeam_channel::unbounded();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(1));
    assert_eq!(
        sup.handle_wake(Wake::Interrupt).unwrap(),
        Some(Ending::Signal)
    );
    wake_tx.send(Wake::Interrupt).unwrap();
    assert!(sup.stop_all(Some(&wakes)).is_empty());
    drop(sup);
    let state = rig.driver.borrow();
    let stops: Vec<&String> = state
        .calls
        .iter()
        .filter(|c| c.starts_with("stop"))
        .collect();
    assert_eq!(stops.first().map(|s| s.as_str()), Some("stop sender-A"));
    assert_eq!(stops.last().map(|s| s.as_str()), Some("stop sink"));
    assert!(state.grace.iter().all(|g| g.is_zero()), "{:?}", state.grace);
    assert!(state.alive.is_empty());
}

/// A sender that exits before its EOF is restarted 0.1 s later; one at EOF (status
/// 0) is not; a worker that cannot bind is a setup failure.
#[test]
fn exits_restart_senders_and_fail_setup() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    let driver = rig.driver.clone();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(1));
    driver.borrow_mut().exits.insert(Component::Sender('A'), 1);
    driver.borrow_mut().exits.insert(Component::Sender('B'), 0);
    assert_eq!(sup.handle_wake(Wake::ChildExited).unwrap(), None);
    drive(&mut sup, clock, Duration::from_millis(200));
    driver.borrow_mut().exits.insert(Component::Worker(1), 2);
    let failure = sup.handle_wake(Wake::ChildExited).unwrap_err();
    assert!(
        failure.to_string().contains("worker1 exited with status 2"),
        "{failure}"
    );
    drop(sup);
    let state = rig.driver.borrow();
    let starts: Vec<&String> = state
        .calls
        .iter()
        .filter(|c| c.starts_with("start sender"))
        .collect();
    assert_eq!(
        starts,
        ["start sender-A", "start sender-B", "start sender-A"]
    );
}

/// `--replay` fires the recorded steps at their times and runs no loop of its own.
#[test]
fn replay_fires_recorded_steps_only() {
    let mut p = plan(&["crash1", "crash-sink"]);
    let step = Step::on;
    p.replay = Some(vec![
        step(1.0, Act::Crash, "worker1"),
        step(1.5, Act::Restart, "worker1"),
        step(2.0, Act::Pause, "sink"),
        step(2.5, Act::Resume, "sink"),
    ]);
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(30));
    drop(sup);
    let state = rig.driver.borrow();
    let actions: Vec<&String> = state.calls.iter().skip(6).collect();
    assert_eq!(
        actions,
        ["kill worker1", "start worker1", "pause sink", "resume sink"]
    );
    let events = String::from_utf8(rig.events).unwrap();
    let times: Vec<f64> = events
        .lines()
        .map(|l| serde_json::from_str::<Step>(l).unwrap().at)
        .collect();
    assert_eq!(times, [1.0, 1.5, 2.0, 2.5]);
}

/// Issue 17.7: a step that would do nothing (a crash of a component that is down, a
/// restart of one that runs) is skipped with a note and never recorded as done.
#[test]
fn a_step_without_effect_is_skipped_and_not_recorded() {
    let mut p = plan(&[]);
    let step = Step::on;
    p.scenario.steps = vec![
        step(1.0, Act::Crash, "worker1"),
        step(2.0, Act::Crash, "worker1"),
        step(3.0, Act::Restart, "worker2"),
        step(4.0, Act::Restart, "worker1"),
    ];
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(10));
    assert_eq!(sup.fault_count, 1);
    drop(sup);
    let actions: Vec<String> = rig.driver.borrow().calls.iter().skip(6).cloned().collect();
    assert_eq!(actions, ["kill worker1", "start worker1"]);
    let events = String::from_utf8(rig.events).unwrap();
    let recorded: Vec<(f64, Action)> = events
        .lines()
        .map(|l| serde_json::from_str::<Step>(l).unwrap())
        .map(|s| (s.at, s.action()))
        .collect();
    assert_eq!(recorded, [(1.0, Action::Crash), (4.0, Action::Restart)]);
    let out = String::from_utf8(rig.out).unwrap();
    assert!(
        out.contains("crash worker1: skipped, it is not running"),
        "{out}"
    );
    assert!(
        out.contains("restart worker2: skipped, it is running"),
        "{out}"
    );
}

/// Takes `lines` lines, then fails every write, as a file made immutable does.
struct FailingAfter {
    lines: usize,
    taken: Vec<u8>,
}

impl Write for FailingAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.taken.iter().filter(|&&b| b == b'\n').count() >= self.lines {
            return Err(std::io::Error::from_raw_os_error(1));
        }
        self.taken.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Issue 17.7: losing the record of faults stops the soak, at the first failed
/// write, as a failed sink write would: no fault goes on unrecorded.
#[test]
fn a_failed_write_of_events_stops_the_soak() {
    let p = plan(&["crash1", "crash-sink"]);
    let mut rig = Rig::new();
    let mut events = FailingAfter {
        lines: 2,
        taken: Vec::new(),
    };
    let mut sup = Supervisor::new(
        &p,
        &rig.preset,
        &rig.clock,
        &mut rig.driver,
        &rig.cluster,
        None,
        &mut rig.out,
        Some(&mut events),
    );
    sup.start(Duration::from_secs(15)).unwrap();
    let end = rig.clock.now() + Duration::from_secs(120);
    let mut failure = None;
    while let Some(at) = sup.next_deadline() {
        if at > end {
            break;
        }
        rig.clock.0.set(at.max(rig.clock.now()));
        if let Err(e) = sup.fire_due() {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("the soak stopped");
    assert!(matches!(failure, RunFailure::Record(_)), "{failure}");
    assert!(failure
        .to_string()
        .contains("events.jsonl could not be written"));
    assert_eq!(
        sup.fault_count, 2,
        "the third fault's record failed, and nothing after it ran"
    );
}

/// Issue 17.5: a restarted component not ready at `readiness_timeout` is judged on
/// evidence. One whose log keeps growing is slow, and waited for (up to the limit);
/// one that shows no progress for a whole timeout is a finding that says what was
/// seen.
#[test]
fn a_slow_restart_is_waited_for_and_a_silent_one_is_a_finding_with_evidence() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    let (ready, log) = (rig.cluster.ready.clone(), rig.cluster.log.clone());
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_millis(100));
    ready.set(false);
    sup.must_be_ready(Component::Worker(1));
    for _ in 0..8 {
        log.set(log.get() + 100);
        assert_eq!(drive(&mut sup, clock, Duration::from_secs(5)), None);
    }
    assert!(
        sup.findings.is_empty(),
        "40 s of a growing log: slow, not stuck"
    );
    ready.set(true);
    drive(&mut sup, clock, Duration::from_secs(1));
    assert!(sup.waiting.is_empty());
    ready.set(false);
    sup.must_be_ready(Component::Worker(2));
    assert_eq!(
        drive(&mut sup, clock, Duration::from_secs(20)),
        Some(Ending::Found)
    );
    let detail = &sup.findings[0].detail;
    assert!(
        detail
            .starts_with("worker2 was not ready 15 s after it was restarted and shows no progress")
            && detail.contains("nothing was written to its log worker2.log for 15 s"),
        "{detail}"
    );
    drop(sup);
    let out = String::from_utf8(rig.out).unwrap();
    assert!(
        out.contains(
            "worker1 is slow to be ready, not stuck (its log worker1.log grew by 300 bytes)"
        ),
        "{out}"
    );
}

/// Issue 17.5: a component crashed on purpose while it is waited for is not judged
/// (its own crash loop struck again before it was ready): that wait ends, and only
/// the wait of its next restart is judged.
#[test]
fn a_wait_ends_when_its_component_is_taken_down_on_purpose() {
    let p = plan(&[]);
    let mut rig = Rig::new();
    let ready = rig.cluster.ready.clone();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_millis(100));
    ready.set(false);
    sup.must_be_ready(Component::Worker(1));
    drive(&mut sup, clock, Duration::from_secs(5));
    sup.take_down(&Component::Worker(1));
    assert_eq!(drive(&mut sup, clock, Duration::from_secs(30)), None);
    assert!(sup.findings.is_empty());
    sup.must_be_ready(Component::Worker(1));
    assert_eq!(
        drive(&mut sup, clock, Duration::from_secs(20)),
        Some(Ending::Found)
    );
    assert_eq!(
        sup.findings.len(),
        1,
        "one judgment: the stale wait's timer did nothing"
    );
}

/// `--duration` ends the soak at its time, as an event of the timer heap.
#[test]
fn the_duration_ends_the_soak() {
    let mut p = plan(&["crash1"]);
    p.duration = Some(Duration::from_secs(5));
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    assert_eq!(
        drive(&mut sup, clock, Duration::from_secs(60)),
        Some(Ending::Duration)
    );
}

/// A seed's schedule is a function of the seed alone: every loop at once, on a fake
/// clock, writes these events. The families draw from one RNG in the order of
/// `FAMILIES`, so moving a family or its timers must leave this unchanged.
#[test]
fn a_seed_gives_the_same_schedule_of_every_loop() {
    let p = plan(&[
        "crash-sink",
        "crash1",
        "crash2.slow",
        "crash-source",
        "grow-and-shrink",
        "pause",
        "net-sink",
        "net-control",
    ]);
    let network = FakeNetwork::default();
    let mut rig = Rig::new();
    let (sup, clock) = rig.supervisor(&p);
    let mut sup = sup.with_network(&network);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(30));
    drop(sup);
    insta::assert_snapshot!(String::from_utf8(rig.events).unwrap());
}

/// Issue 19.2: a clock loop steps, strobes or speeds its component's clock and heals it
/// back to true time, writing the offset file libfaketime reads; every fault is an
/// event with its offset, and the clock is true time at the start and after each heal.
#[test]
fn a_clock_loop_faults_and_heals_its_component_s_clock_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(&["clock-sink", "clock1"]);
    let mut rig = Rig::new();
    rig.preset.run_dir = dir.path().to_path_buf();
    let (mut sup, clock) = rig.supervisor(&p);
    if !std::path::Path::new(clock::LIBFAKETIME).is_file() {
        let err = sup.start(Duration::from_secs(15)).unwrap_err().to_string();
        assert!(
            err.contains("apt-get install faketime libfaketime"),
            "{err}"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI has libfaketime: {err}"
        );
        return;
    }
    sup.start(Duration::from_secs(15)).unwrap();
    let file = |c: &Component| std::fs::read_to_string(clock::clock_file(dir.path(), c)).unwrap();
    assert_eq!(
        file(&Component::Sink),
        "+0\n",
        "true time before the first fault"
    );
    drive(&mut sup, clock, Duration::from_secs(120));
    let faults = sup.fault_count;
    drop(sup);
    let events = String::from_utf8(rig.events).unwrap();
    let steps: Vec<Step> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let faulted = steps.iter().filter(|s| s.action().is_fault()).count();
    let healed = steps
        .iter()
        .filter(|s| s.action() == Action::ClockHeal)
        .count();
    assert!(faulted >= 10, "{events}");
    assert_eq!(faults as usize, faulted);
    assert!(healed + 2 >= faulted, "each fault heals: {events}");
    for s in &steps {
        if let Act::ClockStep(c) = &s.act {
            assert!((0.1..=300.0).contains(&c.by.abs()), "{c:?}");
        }
    }
    assert!(steps.iter().any(|s| s.component() == "worker1"));
    let out = String::from_utf8(rig.out).unwrap();
    assert!(out.contains("=S") && out.contains("=1"), "{out}");
}

/// A scripted clock step without `for` stays; with `for` it heals after it; a strobe
/// flips the file until its heal.
#[test]
fn scripted_clock_steps_set_the_file_and_heal_after_their_for() {
    if !std::path::Path::new(clock::LIBFAKETIME).is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI has libfaketime"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(&[]);
    let strobe = crate::rundir::step::ClockStrobe {
        component: "worker1".into(),
        by: -2.0,
        period: 0.5,
        for_s: 3.0,
    };
    p.scenario.steps = vec![
        Step {
            at: 1.0,
            act: Act::ClockStep(crate::rundir::step::ClockStep {
                component: "sink".into(),
                by: -30.0,
                for_s: Some(2.0),
            }),
        },
        Step {
            at: 1.0,
            act: Act::ClockStrobe(strobe),
        },
    ];
    let mut rig = Rig::new();
    rig.preset.run_dir = dir.path().to_path_buf();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    let file = |c: &Component| std::fs::read_to_string(clock::clock_file(dir.path(), c)).unwrap();
    drive(&mut sup, clock, Duration::from_millis(1200));
    assert_eq!(file(&Component::Sink), "-30\n");
    assert_eq!(file(&Component::Worker(1)), "-2\n");
    drive(&mut sup, clock, Duration::from_millis(500));
    assert_eq!(
        file(&Component::Worker(1)),
        "+0\n",
        "the strobe flipped back"
    );
    drive(&mut sup, clock, Duration::from_secs(5));
    assert_eq!(file(&Component::Sink), "+0\n", "healed after its for");
    assert_eq!(file(&Component::Worker(1)), "+0\n", "the strobe ended true");
    drop(sup);
    let out = String::from_utf8(rig.out).unwrap();
    assert!(
        out.contains("<S") && out.contains("~1") && out.contains("=S"),
        "{out}"
    );
}

/// A worker that shrank and grew back is a member like any other: no loop takes it
/// for down on purpose (the shrink loop could never shrink it again, and power loops
/// never struck it).
#[test]
fn a_worker_grown_back_is_not_down() {
    let p = plan(&["grow-and-shrink"]);
    let mut rig = Rig::new();
    let (mut sup, _clock) = rig.supervisor(&p);
    let w2 = Component::Worker(2);
    sup.members = vec![0, 1, 2];
    sup.shrink(2);
    assert!(sup.down.contains_key(&w2));
    sup.grow(2).unwrap();
    assert!(!sup.down.contains_key(&w2), "worker2 still counted down");
}

/// A replayed power cut restarts its component where the recorded restart is, once:
/// not by itself at once and then again (skipped) at the recorded restart.
#[test]
fn a_replayed_power_cut_restarts_where_the_record_does() {
    let mut p = plan(&["power-sink"]);
    p.replay = Some(vec![
        Step {
            at: 1.0,
            act: Act::PowerLoss(crate::rundir::step::PowerCut {
                component: "sink".into(),
                ..Default::default()
            }),
        },
        Step::on(1.5, Act::Restart, "sink"),
    ]);
    let mut rig = Rig::new();
    let (mut sup, clock) = rig.supervisor(&p);
    sup.start(Duration::from_secs(15)).unwrap();
    drive(&mut sup, clock, Duration::from_secs(30));
    drop(sup);
    let state = rig.driver.borrow();
    let actions: Vec<&String> = state.calls.iter().skip(6).collect();
    assert_eq!(actions, ["kill sink", "start sink"]);
    let out = String::from_utf8_lossy(&rig.out);
    assert!(!out.contains("skipped"), "{out}");
    let events = String::from_utf8(rig.events).unwrap();
    let times: Vec<f64> = events
        .lines()
        .map(|l| serde_json::from_str::<Step>(l).unwrap().at)
        .collect();
    assert_eq!(times, [1.0, 1.5], "{events}");
}
