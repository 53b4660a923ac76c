//! Measures how often the machine itself pauses a thread that nothing else
//! competes with: the floor under every latency figure of `bench/run.sh`.
//!
//! Usage: `cargo run --release --example stall_probe -- [SECONDS] [PERIOD_US]`
//! (defaults 5 and 200). One thread per CPU, each held to its CPU, sleeps to
//! deadlines PERIOD_US apart and notes how late each wake-up is: a virtual
//! CPU the host takes away stalls only the threads on it, so each CPU needs
//! its own witness. On an idle machine nothing of the benchmark makes it
//! wait, so a wake-up late by a millisecond or more is a pause any of derp's
//! threads could meet at any moment: a virtual CPU the host gave to someone
//! else (steal), a kernel thread, interrupts. A late wake-up of X ms means
//! a pause of X to X + PERIOD ms; shorter pauses that fall between two
//! deadlines go unseen.
//!
//! `bench/run.sh` runs it on the idle machine before the loads (every
//! 200 µs) and beside each of derp's fair-share runs (every 10 ms, to
//! disturb the run less), as real-time threads (`chrt -f 50`) when allowed:
//! then no thread of normal priority can delay them, and what they meet are
//! the machine's own pauses.
//!
//! Prints one line:
//! `cpus=N pinned=N wakeups=N late_1ms=N late_3ms=N late_5ms=N max_ms=X
//! lost_pct=X late_1ms_per_s=X steal_pct=X`, summed over the CPUs, where
//! `pinned` counts the witnesses that could be held to their CPU, `max_ms`
//! is the latest wake-up on any CPU, `lost_pct` the share of the CPUs' time
//! spent in wake-ups late by 1 ms or more, and `steal_pct` the share of all
//! CPUs' time the host took during the run, asleep or not (`/proc/stat`;
//! `nan` when the kernel does not account it).

use std::time::{Duration, Instant};

/// The `steal` and total columns of the first line of `/proc/stat`.
fn steal_and_total() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already counted in user.
    let total: u64 = ticks.iter().take(8).sum();
    Some((*ticks.get(7)?, total))
}

/// What one CPU's witness saw.
#[derive(Default)]
struct Seen {
    pinned: bool,
    wakeups: u64,
    late1: u64,
    late3: u64,
    late5: u64,
    max: Duration,
    lost: Duration,
}

/// Sleeps to deadlines `period` apart until `run` has passed, on `cpu`.
fn witness(cpu: usize, period: Duration, run: Duration) -> Seen {
    let mut seen = Seen {
        pinned: pin(cpu),
        ..Seen::default()
    };
    let start = Instant::now();
    let mut deadline = start;
    while deadline.duration_since(start) < run {
        deadline += period;
        let now = Instant::now();
        if deadline > now {
            // `clock_nanosleep` on a relative time; a wake-up late by the
            // time slack (50 µs) is far below 1 ms.
            std::thread::sleep(deadline - now);
        }
        let late = Instant::now().saturating_duration_since(deadline);
        seen.wakeups += 1;
        seen.max = seen.max.max(late);
        if late >= Duration::from_millis(1) {
            seen.late1 += 1;
            seen.lost += late;
        }
        if late >= Duration::from_millis(3) {
            seen.late3 += 1;
        }
        if late >= Duration::from_millis(5) {
            seen.late5 += 1;
        }
        // The next deadline counts from this wake-up, so that a pause is
        // not followed by a burst of wake-ups catching up (each period is
        // the period plus the last wake-up's delay).
        deadline = deadline.max(Instant::now());
    }
    seen
}

/// Holds the calling thread to `cpu` (Linux); false where it cannot.
fn pin(cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        match rustix::thread::sched_setaffinity(None, &set) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("cannot hold the probe to CPU {cpu}: {e}");
                false
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        false
    }
}

/// The CPUs this process may run on.
#[cfg(target_os = "linux")]
fn cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => vec![0],
    }
}

/// Elsewhere: one witness per core, unpinned.
#[cfg(not(target_os = "linux"))]
fn cpus() -> Vec<usize> {
    (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .unwrap_or(5.0);
    let period = Duration::from_micros(
        std::env::args()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(200)
            .max(1),
    );
    let run = Duration::from_secs_f64(seconds);
    let cpus = cpus();
    let stat_before = steal_and_total();
    let start = Instant::now();
    let threads: Vec<_> = cpus
        .iter()
        .map(|&cpu| std::thread::spawn(move || witness(cpu, period, run)))
        .collect();
    let mut all = Seen::default();
    let mut pinned = 0;
    for t in threads {
        let seen = t.join().expect("a probe thread panicked");
        pinned += usize::from(seen.pinned);
        all.wakeups += seen.wakeups;
        all.late1 += seen.late1;
        all.late3 += seen.late3;
        all.late5 += seen.late5;
        all.max = all.max.max(seen.max);
        all.lost += seen.lost;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let steal = match (stat_before, steal_and_total()) {
        // Some hypervisors' steal counter can step back: then no figure.
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 && s1 >= s0 => {
            format!("{:.2}", 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64)
        }
        _ => "nan".to_string(),
    };
    println!(
        "cpus={} pinned={pinned} wakeups={} late_1ms={} late_3ms={} late_5ms={} max_ms={:.2} lost_pct={:.2} late_1ms_per_s={:.1} steal_pct={steal}",
        cpus.len(),
        all.wakeups,
        all.late1,
        all.late3,
        all.late5,
        all.max.as_secs_f64() * 1000.0,
        100.0 * all.lost.as_secs_f64() / (elapsed * cpus.len() as f64),
        all.late1 as f64 / elapsed,
    );
}
