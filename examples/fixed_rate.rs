//! A fixed-rate (open-loop) HTTP/1.1 load generator for `bench/run.sh`.
//!
//! wrk keeps a fixed number of requests in flight, so a slow server gets
//! fewer requests and its latency looks better than a user would see it.
//! This sends request `i` at `start + i / rate` whatever the server does,
//! and measures each latency from that intended time (a request that waits
//! for a free connection counts the wait), as wrk2 does.
//!
//! Requests go out on a grid of ticks, 1 ms by default (wrk2's timers have
//! the same resolution): the requests due within a tick are sent together
//! at its end. Between ticks it sleeps, so an answer that arrives meanwhile
//! is read at the next tick. Each latency still runs from the request's own
//! due time to the moment its answer is read, so both waits are charged to
//! the server, never hidden: figures are up to about two ticks higher than
//! the server's own. `FIXED_RATE_TICK_US=0` sends each request at its own
//! time instead (sleeping in steps of at most 50 µs); that costs the
//! generator and the server more CPU per request, since each request then
//! wakes both on its own (bench/README.md gives the figures).
//!
//! It runs on one thread with one `epoll` set over every connection, so
//! that the generator takes as little as it can of the CPU it shares with
//! the server under test: each request costs one `write`, one `read` and
//! its share of one `epoll_wait`, with no thread hand-off and no channel.
//!
//! ```text
//! fixed_rate ADDR PATH RATE SECONDS CONNECTIONS [HEADER...]
//! fixed_rate 127.0.0.1:8080 /api/v1/auth/session 20000 10 64 'Authorization: Bearer ey...'
//! ```
//!
//! Prints one line of `key=value` pairs: requests answered, the achieved
//! rate, latency percentiles in ms, non-2xx answers and socket errors, the
//! 99th percentile of the wait from the due time until a connection took
//! the request (`queue_p99_ms`: the wait to the tick included), the
//! generator's own CPU time (`cpu_s`, from `/proc/self/stat`) and the tick
//! (`tick_us`). Each second's p99 goes to stderr. Loopback addresses only.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The largest response head and body this reads (derp's `/session`
/// answers are well under it).
const BUFFER: usize = 64 * 1024;
/// The grid on which requests are sent unless `FIXED_RATE_TICK_US` says
/// otherwise.
const TICK: Duration = Duration::from_millis(1);
/// With no tick: the longest sleep between two looks at the sockets when
/// nothing is ready and a request is due soon.
const STEP: Duration = Duration::from_micros(50);

/// One keep-alive connection: idle, or carrying request `index`.
struct Conn {
    stream: Option<TcpStream>,
    /// The request in flight, with what of it is still to be written.
    busy: Option<(u64, usize)>,
    buf: Vec<u8>,
    filled: usize,
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

struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    start: Instant,
    interval: Duration,
    total: u64,
    /// Zero: each request at its own time.
    tick: Duration,
}

impl Plan {
    fn due(&self, i: u64) -> Instant {
        self.start + self.interval.mul_f64(i as f64)
    }

    /// When request `i` goes out: its due time, or the end of its tick.
    fn release(&self, i: u64) -> Instant {
        let due = self.due(i);
        if self.tick.is_zero() {
            return due;
        }
        let since = due.saturating_duration_since(self.start).as_nanos();
        let tick = self.tick.as_nanos();
        let at = since.div_ceil(tick).saturating_mul(tick);
        self.start + Duration::from_nanos(u64::try_from(at).unwrap_or(u64::MAX))
    }
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

    let mut poll = Poll::new().expect("epoll");
    // Every connection is open before the first request is due, so the
    // schedule does not start with a burst of connects.
    let mut conns: Vec<Conn> = (0..connections)
        .map(|k| Conn {
            stream: connect(&poll, addr, k),
            busy: None,
            buf: vec![0; BUFFER],
            filled: 0,
        })
        .collect();
    let plan = Plan {
        addr,
        request: request.into_bytes(),
        start: Instant::now() + Duration::from_millis(100),
        interval: Duration::from_secs_f64(1.0 / rate),
        total: (rate * seconds) as u64,
        tick: match std::env::var("FIXED_RATE_TICK_US") {
            Ok(v) => Duration::from_micros(v.parse().expect("FIXED_RATE_TICK_US is a number")),
            Err(_) => TICK,
        },
    };
    let cpu_before = cpu_seconds();
    let tally = run(&plan, &mut poll, &mut conns);
    let elapsed = plan.start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    report(tally, seconds, elapsed, cpu, plan.tick);
}

/// Sends every request of the plan when due and reads every answer.
fn run(plan: &Plan, poll: &mut Poll, conns: &mut [Conn]) -> Tally {
    let total = plan.total as usize;
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(total),
        by_second: Vec::with_capacity(total),
        queued_us: Vec::with_capacity(total),
        ..Tally::default()
    };
    let mut events = Events::with_capacity(conns.len().max(16));
    let mut pending: VecDeque<u64> = VecDeque::new();
    let mut idle: Vec<usize> = (0..conns.len()).collect();
    let mut next = 0u64;
    let mut finished = 0u64;
    while finished < plan.total {
        let now = Instant::now();
        while next < plan.total && plan.release(next) <= now {
            pending.push_back(next);
            next += 1;
        }
        while let (Some(&k), Some(&i)) = (idle.last(), pending.front()) {
            idle.pop();
            pending.pop_front();
            tally
                .queued_us
                .push(now.saturating_duration_since(plan.due(i)).as_micros() as u64);
            // A connection the server closed while it was idle fails here:
            // count the request and open a new one in its place.
            if !start(plan, poll, &mut conns[k], k, i) {
                fail(plan, poll, &mut conns[k], k, &mut tally);
                finished += 1;
                idle.push(k);
            }
        }
        // Wait for answers; when a connection is free and the next request
        // goes out within 2 ms, look without waiting and then sleep below.
        let until_due = if next < plan.total && !idle.is_empty() {
            plan.release(next).saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(10)
        };
        let timeout = if until_due > Duration::from_millis(2) {
            until_due - Duration::from_millis(1)
        } else {
            Duration::ZERO
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {e}");
        }
        if events.is_empty() && timeout.is_zero() {
            // To the next tick in one sleep, or in short steps without one,
            // so that no send is rounded up to `epoll_wait`'s millisecond.
            std::thread::sleep(if plan.tick.is_zero() {
                until_due.min(STEP)
            } else {
                until_due
            });
            continue;
        }
        for event in &events {
            let k = event.token().0;
            let conn = &mut conns[k];
            let Some((i, _)) = conn.busy else { continue };
            if event.is_writable() && !flush(plan, conn) {
                fail(plan, poll, conn, k, &mut tally);
                finished += 1;
                idle.push(k);
                continue;
            }
            match receive(conn) {
                Ok(None) => {}
                Ok(Some(status)) => {
                    let due = plan.due(i);
                    let us = due.elapsed().as_micros() as u64;
                    tally.latencies_us.push(us);
                    tally
                        .by_second
                        .push((plan.interval.mul_f64(i as f64).as_secs(), us));
                    if !(200..300).contains(&status) {
                        tally.non_2xx += 1;
                    }
                    conn.busy = None;
                    finished += 1;
                    idle.push(k);
                }
                Err(_) => {
                    fail(plan, poll, conn, k, &mut tally);
                    finished += 1;
                    idle.push(k);
                }
            }
        }
    }
    tally
}

/// Opens connection `k`, registered for reads and writes (edge-triggered).
fn connect(poll: &Poll, addr: SocketAddr, k: usize) -> Option<TcpStream> {
    let std = std::net::TcpStream::connect(addr).ok()?;
    std.set_nodelay(true).ok()?;
    std.set_nonblocking(true).ok()?;
    let mut stream = TcpStream::from_std(std);
    poll.registry()
        .register(
            &mut stream,
            Token(k),
            Interest::READABLE | Interest::WRITABLE,
        )
        .ok()?;
    Some(stream)
}

/// Puts request `i` on connection `k`; false when it cannot be sent.
fn start(plan: &Plan, poll: &Poll, conn: &mut Conn, k: usize, i: u64) -> bool {
    if conn.stream.is_none() {
        conn.stream = connect(poll, plan.addr, k);
    }
    conn.busy = Some((i, 0));
    conn.filled = 0;
    flush(plan, conn)
}

/// Writes what is left of the request; false on a socket error.
fn flush(plan: &Plan, conn: &mut Conn) -> bool {
    let (Some(stream), Some((i, sent))) = (conn.stream.as_mut(), conn.busy) else {
        return false;
    };
    let mut sent = sent;
    while sent < plan.request.len() {
        match stream.write(&plan.request[sent..]) {
            Ok(0) => return false,
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.busy = Some((i, sent));
    true
}

/// Reads what has arrived; the status code once the whole answer is in
/// (Content-Length bodies only, which is what derp sends).
fn receive(conn: &mut Conn) -> std::io::Result<Option<u16>> {
    let stream = conn
        .stream
        .as_mut()
        .ok_or_else(|| std::io::Error::other("no connection"))?;
    // One read usually holds the whole answer; reading on until the socket
    // is empty would cost a second call each time. Stopping early is safe
    // with edge-triggered events because nothing more arrives before the
    // next request is sent; a partial answer reads on.
    loop {
        if conn.filled == conn.buf.len() {
            return Err(std::io::Error::other("response too large"));
        }
        match stream.read(&mut conn.buf[conn.filled..]) {
            Ok(0) => return Err(std::io::Error::other("connection closed")),
            Ok(n) => {
                conn.filled += n;
                if complete(&conn.buf[..conn.filled])?.is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let status = complete(&conn.buf[..conn.filled])?;
    if status.is_some() {
        conn.filled = 0;
    }
    Ok(status)
}

/// The status code of the answer in `got` once it is whole.
fn complete(got: &[u8]) -> std::io::Result<Option<u16>> {
    let Some(end) = find(got, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&got[..end]).map_err(std::io::Error::other)?;
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
    if got.len() < end + 4 + length {
        return Ok(None);
    }
    Ok(Some(status))
}

/// Counts the request in flight on `conn` as an error and reconnects.
fn fail(plan: &Plan, poll: &Poll, conn: &mut Conn, k: usize, tally: &mut Tally) {
    tally.errors += 1;
    if let Some(mut s) = conn.stream.take() {
        let _ = poll.registry().deregister(&mut s);
    }
    conn.busy = None;
    conn.filled = 0;
    conn.stream = connect(poll, plan.addr, k);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// This process's user and system CPU time, in seconds (Linux only; 0
/// elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th, in clock ticks of 1/100 s.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| f.get(n).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn report(mut tally: Tally, seconds: f64, elapsed: f64, cpu: f64, tick: Duration) {
    tally.latencies_us.sort_unstable();
    // Each second's p99 on stderr, to tell a passing stall from a steady one.
    let seconds_run = (seconds.ceil() as usize).max(1);
    let mut per_second: Vec<Vec<u64>> = vec![Vec::new(); seconds_run];
    for (sec, us) in &tally.by_second {
        per_second[(*sec as usize).min(seconds_run - 1)].push(*us);
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
        "requests={} rate={:.1} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} non2xx={} errors={} queue_p99_ms={:.2} cpu_s={:.2} tick_us={}",
        tally.latencies_us.len(),
        done / elapsed,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0),
        tally.non_2xx,
        tally.errors,
        pct_of(&tally.queued_us, 99.0),
        cpu,
        tick.as_micros()
    );
}
