//! Bearer tokens: any string given to the native keyring's verifier (an
//! HS256 ring and an EdDSA one with an audience) is refused cleanly unless
//! it is one of the tokens the ring itself signed.
#![no_main]

use derp::auth::jwt::{AccessClaims, Keyring, KeyringSettings};
use derp::auth::sealer::Sealer;
use derp::config::JwtAlgorithm;
use derp::storage::{Conn, migrations};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const NOW: i64 = 1_800_000_000;

struct Rings {
    hs256: Keyring,
    eddsa: Keyring,
}

fn ring(alg: JwtAlgorithm, audience: Option<&str>) -> Keyring {
    let mut conn = Conn::open_in_memory().expect("sqlite in memory");
    migrations::apply(&mut conn).expect("migrations");
    Keyring::load(
        &conn,
        KeyringSettings {
            alg,
            secret: Some(b"a fuzzing secret of thirty-two bytes!".to_vec()),
            issuer: "https://auth.example.com".into(),
            audience: audience.map(str::to_string),
            access_ttl_seconds: 900,
            sealer: Some(Sealer::from_key([7; 32])),
            extra_algs: Vec::new(),
        },
        NOW,
    )
    .expect("keyring")
}

fn rings() -> &'static Rings {
    static RINGS: OnceLock<Rings> = OnceLock::new();
    RINGS.get_or_init(|| {
        let rings = Rings {
            hs256: ring(JwtAlgorithm::HS256, None),
            eddsa: ring(JwtAlgorithm::EdDSA, Some("my-app")),
        };
        // Both rings accept their own tokens: the target checks something.
        for (r, aud) in [(&rings.hs256, None), (&rings.eddsa, Some("my-app"))] {
            let token = r.sign(&claims(aud)).expect("sign");
            assert_eq!(r.verify(&token, NOW).expect("own token").sub, "fuzz-user");
        }
        rings
    })
}

fn claims(aud: Option<&str>) -> AccessClaims {
    AccessClaims {
        sub: "fuzz-user".into(),
        sid: "s".into(),
        session_id: "s".into(),
        iat: NOW,
        exp: NOW + 900,
        nbf: None,
        jti: "j".into(),
        iss: "https://auth.example.com".into(),
        aud: aud.map(str::to_string),
        email: "fuzz@example.com".into(),
        role: "default".into(),
        org_id: None,
        org_role: None,
        amr: vec!["pwd".into()],
        client_id: None,
        scope: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let rings = rings();
    for ring in [&rings.hs256, &rings.eddsa] {
        if let Ok(c) = ring.verify(token, NOW) {
            // Nothing but the ring's own signature gets through.
            assert_eq!(c.sub, "fuzz-user", "accepted a token it never signed");
        }
    }
});
