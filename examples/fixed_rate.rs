//! A fixed-rate (open-loop) HTTP/1.1 load generator for `bench/run.sh`.
//!
//! wrk keeps a fixed number of requests in flight, so a slow server gets
//! fewer requests and its latency looks better than a user would see it.
//! This sends request `i` at `start + i / rate` whatever the server does,
//! and measures each latency from that intended time (a request that waits
//! for a free connection counts the wait), as wrk2 does.
//!
//! The schedule is kept by a thread of its own that sleeps in steps of
//! 50 µs and releases each request when it is due; the connections take
//! released requests in order. (Sleeping on the async runtime's timer
//! instead would round every send up to the next millisecond and hold a
//! connection idle until then, which adds up to a millisecond to every
//! latency and, near a few tens of thousands of requests per second, runs
//! the connections out.)
//!
//! ```text
//! fixed_rate ADDR PATH RATE SECONDS CONNECTIONS [HEADER...]
//! fixed_rate 127.0.0.1:8080 /api/v1/auth/session 20000 10 64 'Authorization: Bearer ey...'
//! ```
//!
//! Prints one line of `key=value` pairs: requests sent, the achieved rate,
//! latency percentiles in ms, non-2xx answers and socket errors, and the
//! 99th percentile of the wait for a free connection (`queue_p99_ms`).
//! Loopback addresses only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    start: Instant,
    interval: Duration,
    /// Due requests, by index, released by the schedule thread.
    due: Mutex<mpsc::UnboundedReceiver<u64>>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// The same latencies with the second of the run each was due in.
    by_second: Vec<(u64, u64)>,
    /// From the intended send time to the moment a connection took it.
    queued_us: Vec<u64>,
    non_2xx: u64,
    errors: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: fixed_rate ADDR PATH RATE SECONDS CONNECTIONS [HEADER...]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse().expect("ADDR is host:port");
    assert!(addr.ip().is_loopback(), "loopback addresses only");
    let path = &args[1];
    let rate: f64 = args[2].parse().expect("RATE is a number");
    let seconds: f64 = args[3].parse().expect("SECONDS is a number");
    let connections: usize = args[4].parse().expect("CONNECTIONS is a number");
    assert!(rate > 0.0 && seconds > 0.0 && connections > 0);
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for header in &args[5..] {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");

    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * seconds) as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Every connection is open before the first request is due, so the
    // schedule does not start with a burst of connects.
    let streams: Vec<Option<TcpStream>> = runtime.block_on(async {
        let mut streams = Vec::with_capacity(connections);
        for _ in 0..connections {
            let s = TcpStream::connect(addr).await.ok();
            if let Some(s) = &s {
                let _ = s.set_nodelay(true);
            }
            streams.push(s);
        }
        streams
    });
    let start = Instant::now() + Duration::from_millis(100);
    let (release, due) = mpsc::unbounded_channel();
    let schedule = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + interval.mul_f64(i as f64);
            while Instant::now() < at {
                std::thread::sleep(Duration::from_micros(50));
            }
            if release.send(i).is_err() {
                return;
            }
        }
    });
    let tally = runtime.block_on(async move {
        let plan = Arc::new(Plan {
            addr,
            request: request.into_bytes(),
            start,
            interval,

            due: Mutex::new(due),
        });
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|stream| tokio::spawn(connection(plan.clone(), stream)))
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            let part = t.await.expect("connection task");
            all.latencies_us.extend(part.latencies_us);
            all.by_second.extend(part.by_second);
            all.queued_us.extend(part.queued_us);
            all.non_2xx += part.non_2xx;
            all.errors += part.errors;
        }
        let elapsed = plan.start.elapsed().as_secs_f64();
        (all, elapsed)
    });
    schedule.join().expect("schedule thread");
    let (mut tally, elapsed) = tally;
    tally.latencies_us.sort_unstable();
    // Each second's p99 on stderr, to tell a passing stall from a steady one.
    let seconds_run = seconds.ceil() as usize;
    let mut per_second: Vec<Vec<u64>> = vec![Vec::new(); seconds_run.max(1)];
    for (sec, us) in &tally.by_second {
        per_second[(*sec as usize).min(seconds_run.max(1) - 1)].push(*us);
    }
    let p99s: Vec<String> = per_second
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            v.get(((v.len().max(1) - 1) as f64 * 0.99).round() as usize)
                .map_or("-".to_string(), |us| format!("{:.1}", *us as f64 / 1000.0))
        })
        .collect();
    eprintln!("p99_ms_by_second={}", p99s.join(","));
    tally.queued_us.sort_unstable();
    let pct_of = |v: &[u64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i] as f64 / 1000.0
    };
    let pct = |p: f64| pct_of(&tally.latencies_us, p);
    let done = tally.latencies_us.len() as f64;
    println!(
        "requests={} rate={:.1} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} non2xx={} errors={} queue_p99_ms={:.2}",
        tally.latencies_us.len(),
        done / elapsed,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0),
        tally.non_2xx,
        tally.errors,
        pct_of(&tally.queued_us, 99.0)
    );
}

/// One keep-alive connection taking the next released request until the
/// plan is spent; reconnects after an error.
async fn connection(plan: Arc<Plan>, mut stream: Option<TcpStream>) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Some(i) = plan.due.lock().await.recv().await else {
            return tally;
        };
        let due = plan.start + plan.interval.mul_f64(i as f64);
        tally.queued_us.push(due.elapsed().as_micros() as u64);
        if stream.is_none() {
            match TcpStream::connect(plan.addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    tally.errors += 1;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        match exchange(s, &plan.request, &mut buf).await {
            Ok(status) => {
                let us = due.elapsed().as_micros().min(u64::MAX as u128) as u64;
                tally.latencies_us.push(us);
                let second = (plan.interval.mul_f64(i as f64)).as_secs();
                tally.by_second.push((second, us));
                if !(200..300).contains(&status) {
                    tally.non_2xx += 1;
                }
            }
            Err(_) => {
                tally.errors += 1;
                stream = None;
            }
        }
    }
}

/// Sends one request and reads one response (Content-Length bodies only,
/// which is what derp sends); returns the status code.
async fn exchange(s: &mut TcpStream, request: &[u8], buf: &mut [u8]) -> std::io::Result<u16> {
    s.write_all(request).await?;
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(std::io::Error::other("response too large"));
        }
        let n = s.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        filled += n;
        let Some(end) = find(&buf[..filled], b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(std::io::Error::other)?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut have = filled - (end + 4);
        while have < length {
            let n = s.read(buf).await?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            have += n;
        }
        return Ok(status);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
