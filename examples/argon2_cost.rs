//! Times derp's password hash: Argon2id, v0x13, `Params::default()`
//! (m = 19456 KiB, t = 2, p = 1), one thread, as `bench/run.sh` reports it.
//!
//! Usage: `cargo run --release --example argon2_cost -- [N]` (N hashes, default 20).
//! Prints one line: `argon2id m=19456 t=2 p=1 hashes=N mean_ms=X.XXX min_ms=X.XXX`.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20);
    let params = Params::default();
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);

    // One warm-up hash: page faults for the 19 MiB block buffer, CPU clocks.
    let _ = argon.hash_password(b"warm-up password");

    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let pw = format!("bench password {i}");
        let start = Instant::now();
        let hash = argon.hash_password(pw.as_bytes());
        let elapsed = start.elapsed();
        if let Err(e) = hash {
            eprintln!("hash failed: {e}");
            std::process::exit(1);
        }
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / n as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!("argon2id m={m} t={t} p={p} hashes={n} mean_ms={mean:.3} min_ms={min:.3}");
}
