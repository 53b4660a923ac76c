//! The configuration loader: any `derp.toml` text is a configuration or a
//! clear error, never a panic.
#![no_main]

use derp::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_toml(text) {
        assert!(!e.to_string().is_empty());
    }
});
