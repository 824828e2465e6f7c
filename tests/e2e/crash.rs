//! Crash safety: a worker process sends and consumes under load and is
//! killed with SIGKILL, again and again, on the same data directory.
//!
//! After every restart and at the end, we check what the engine promised:
//! - no message whose send was acknowledged is lost (each is delivered at
//!   least once, and the queue ends empty with no dead letters);
//! - no message whose ack was acknowledged is delivered again;
//! - every redelivery is marked `redelivered` and counted: a message's
//!   attempts only grow, and attempt > 1 exactly when redelivered.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kill cycles in the normal test run.
const N_CYCLES: u32 = 24;

#[derive(Default)]
struct Ledger {
    sent: HashSet<String>,
    acked: HashSet<String>,
    /// Per message: the (attempt, redelivered) of every delivery seen.
    deliveries: HashMap<String, Vec<(u32, bool)>>,
    n_lines: usize,
}

impl Ledger {
    /// Folds one line of worker output in, checking the per-line rules.
    fn record(&mut self, line: &str) {
        self.n_lines += 1;
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["sent", id] => {
                self.sent.insert((*id).to_owned());
            }
            ["recv", id, attempt, redelivered] => {
                assert!(
                    !self.acked.contains(*id),
                    "message {id} delivered again after its ack was acknowledged"
                );
                let attempt: u32 = attempt.parse().expect("attempt");
                let redelivered: bool = redelivered.parse().expect("redelivered");
                assert_eq!(
                    redelivered,
                    attempt > 1,
                    "message {id}: attempt {attempt} marked redelivered={redelivered}"
                );
                let seen = self.deliveries.entry((*id).to_owned()).or_default();
                if let Some((last, _)) = seen.last() {
                    assert!(
                        attempt > *last,
                        "message {id}: attempt {attempt} after attempt {last} was not counted"
                    );
                }
                seen.push((attempt, redelivered));
            }
            ["acked", id] => {
                self.acked.insert((*id).to_owned());
            }
            ["ready"] | ["drained"] => {}
            other => panic!("unexpected worker line {other:?}"),
        }
    }
}

fn spawn(dir: &std::path::Path, mode: &str, durability: &str, run: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchyard-crash-worker"))
        .args([
            dir.to_str().expect("utf-8 path"),
            mode,
            durability,
            &run.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the crash worker")
}

/// Reads the worker's lines until `ready`, lets it work for `work`, kills it
/// with SIGKILL, then reads what it wrote before dying.
fn run_and_kill(ledger: &mut Ledger, mut child: Child, work: Duration) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("worker said nothing").expect("read");
    assert_eq!(first, "ready");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(work);
        // `Child::kill` sends SIGKILL on Unix: no chance to clean up.
        child.kill().expect("SIGKILL the worker");
        child.wait().expect("reap the worker")
    });
    let collected: Vec<String> = lines.map_while(Result::ok).collect();
    let status = killer.join().expect("killer thread");
    assert!(
        !status.success(),
        "the worker must die by the signal, not exit"
    );
    // The kill can cut the last line short (`lines` still yields it).
    let n = collected.len();
    for (i, line) in collected.iter().enumerate() {
        if i + 1 == n && !line_is_complete(line) {
            continue;
        }
        ledger.record(line);
    }
}

fn line_is_complete(line: &str) -> bool {
    let words = line.split(' ').count();
    (line.starts_with("sent ") && words == 2 && line.len() == 41)
        || (line.starts_with("acked ") && line.len() == 42)
        || (line.starts_with("recv ")
            && words == 4
            && (line.ends_with(" true") || line.ends_with(" false")))
}

#[test]
fn acknowledged_work_survives_repeated_kill_9() {
    // Goal: the durability and redelivery promises hold across SIGKILLs.
    // Method: N_CYCLES runs of a load worker killed after a varying time,
    // alternating fsync and relaxed durability, then a clean drain run.
    let _alone = switchyard_e2e::HEAVY.blocking_lock();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger = Ledger::default();
    let started = Instant::now();
    for cycle in 0..N_CYCLES {
        let durability = if cycle % 2 == 0 { "fsync" } else { "relaxed" };
        let child = spawn(dir.path(), "load", durability, cycle);
        // 80..=350 ms, varied so kills land in different phases of the work.
        let work = Duration::from_millis(80 + u64::from((cycle * 37) % 271));
        run_and_kill(&mut ledger, child, work);
    }
    let mut drain = spawn(dir.path(), "drain", "fsync", N_CYCLES);
    let stdout = drain.stdout.take().expect("piped stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(
        drain.wait().expect("drain exits").success(),
        "drain run failed"
    );
    assert_eq!(lines.last().map(String::as_str), Some("drained"));
    for line in &lines {
        ledger.record(line);
    }

    assert!(
        ledger.sent.len() > 500,
        "too little load to mean anything: {} sends",
        ledger.sent.len()
    );
    let lost: Vec<&String> = ledger
        .sent
        .iter()
        .filter(|id| !ledger.deliveries.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends never delivered, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let n_redelivered = ledger
        .deliveries
        .values()
        .filter(|d| d.iter().any(|(_, r)| *r))
        .count();
    eprintln!(
        "crash test: {N_CYCLES} kills, {} sends acknowledged, {} acks acknowledged, {} messages redelivered, {} lines, {:?}",
        ledger.sent.len(),
        ledger.acked.len(),
        n_redelivered,
        ledger.n_lines,
        started.elapsed()
    );
    assert!(
        n_redelivered > 0,
        "no kill landed between a delivery and its ack: the test did not exercise redelivery"
    );
}
