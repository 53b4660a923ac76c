//! Times derp's password hash: Argon2id, v0x13, `Params::default()`
//! (m = 19456 KiB, t = 2, p = 1), as `bench/run.sh` reports it.
//!
//! Usage: `cargo run --release --example argon2_cost -- [N]` (default 20).
//! Prints two lines:
//! - `argon2id m=19456 t=2 p=1 hashes=N mean_ms=X min_ms=X`: N hashes one
//!   after another on one thread (the single-core cost of one hash);
//! - `parallel threads=T hashes=M hashes_per_s=X`: N hashes on each of T
//!   threads at once, T = available cores (what the machine sustains when
//!   every core hashes, memory bandwidth shared).

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use std::time::Instant;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_once(argon: &Argon2<'_>, i: usize) {
    let pw = format!("bench password {i}");
    if let Err(e) = argon.hash_password(pw.as_bytes()) {
        eprintln!("hash failed: {e}");
        std::process::exit(1);
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20);
    let params = Params::default();
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    let argon = hasher();

    // One warm-up hash: page faults for the 19 MiB block buffer, CPU clocks.
    hash_once(&argon, usize::MAX);

    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        hash_once(&argon, i);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / n as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!("argon2id m={m} t={t} p={p} hashes={n} mean_ms={mean:.3} min_ms={min:.3}");

    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let argon = hasher();
                for i in 0..n {
                    hash_once(&argon, i);
                }
            });
        }
    });
    let rate = (threads * n) as f64 / start.elapsed().as_secs_f64();
    println!(
        "parallel threads={threads} hashes={} hashes_per_s={rate:.2}",
        threads * n
    );
}
