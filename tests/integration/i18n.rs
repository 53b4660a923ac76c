//! Translations: the catalogues are complete and used, a page's language
//! follows `Accept-Language` (q-values, regions), `?lang=` and
//! `[hosted] default_locale`, and mail goes out in the language of the
//! request that caused it.

use crate::helpers::*;
use derp::domain::i18n;
use std::collections::BTreeSet;
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            out.push(text);
        }
    }
}

/// Every `"section.key"` literal in the sources and templates.
fn literals() -> (String, BTreeSet<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    files(&root.join("src"), &mut texts);
    files(&root.join("templates"), &mut texts);
    let all = texts.join("\n");
    let mut found = BTreeSet::new();
    for piece in all.split('"') {
        let ok = piece.contains('.')
            && piece
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if ok {
            found.insert(piece.to_string());
        }
    }
    (all, found)
}

#[test]
fn every_language_has_exactly_the_reference_keys() {
    let en: BTreeSet<String> = i18n::keys("en").into_iter().collect();
    assert!(en.len() > 100, "the reference catalogue loads");
    assert_eq!(i18n::locales(), vec!["de", "en", "fr"]);
    for code in i18n::locales() {
        let keys: BTreeSet<String> = i18n::keys(code).into_iter().collect();
        let missing: Vec<_> = en.difference(&keys).collect();
        let extra: Vec<_> = keys.difference(&en).collect();
        assert!(missing.is_empty(), "{code} lacks {missing:?}");
        assert!(extra.is_empty(), "{code} has unknown keys {extra:?}");
    }
}

#[test]
fn every_key_is_used_and_every_used_key_exists() {
    let en: BTreeSet<String> = i18n::keys("en").into_iter().collect();
    let (_, used) = literals();
    let is_used = |key: &str| {
        used.contains(key)
            || key
                .strip_suffix(".one")
                .or_else(|| key.strip_suffix(".other"))
                .is_some_and(|base| used.contains(base))
    };
    let unused: Vec<_> = en
        .iter()
        .filter(|k| *k != "language" && !is_used(k))
        .collect();
    assert!(unused.is_empty(), "keys no page or mail uses: {unused:?}");
    // Keys handed straight to a translating call must exist.
    let (all, _) = literals();
    let mut undefined = Vec::new();
    for call in [
        "t(\"",
        "f(\"",
        "tx(\"",
        "f1(\"",
        "f2(\"",
        "f3(\"",
        "chrome_t(\"",
        "plural(\"",
    ] {
        for (i, _) in all.match_indices(call) {
            let before = all[..i].chars().last().unwrap_or(' ');
            if before.is_ascii_alphanumeric() || before == '_' {
                continue;
            }
            let rest = &all[i + call.len()..];
            let key = &rest[..rest.find('"').unwrap_or(0)];
            if key.contains('.') && !en.contains(key) && !en.contains(&format!("{key}.one")) {
                undefined.push(key.to_string());
            }
        }
    }
    assert!(
        undefined.is_empty(),
        "keys used but not in en.toml: {undefined:?}"
    );
}

async fn login_in(app: &TestApp, accept_language: Option<&str>, path: &str) -> String {
    let mut req = app.client.get(app.url(path));
    if let Some(a) = accept_language {
        req = req.header("accept-language", a);
    }
    req.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn the_page_language_follows_accept_language_with_q_values() {
    let app = spawn_app().await;
    let html = login_in(&app, None, "/login").await;
    assert!(html.contains("<html lang=\"en\">"), "English by default");
    assert!(html.contains(">Sign in</h1>") || html.contains("Sign in"));

    let html = login_in(&app, Some("de-CH,de;q=0.9,en;q=0.5"), "/login").await;
    assert!(html.contains("<html lang=\"de\">"));
    assert!(html.contains("Passwort vergessen?"));

    let html = login_in(&app, Some("en;q=0.3, fr;q=0.8, de;q=0.5"), "/login").await;
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains("Mot de passe oublié ?"));

    let html = login_in(&app, Some("es, it;q=0.9"), "/login").await;
    assert!(
        html.contains("<html lang=\"en\">"),
        "nothing shipped: the default"
    );

    let html = login_in(&app, Some("fr;q=0, de;q=0.1"), "/login").await;
    assert!(
        html.contains("<html lang=\"de\">"),
        "q=0 refuses a language"
    );
}

#[tokio::test]
async fn default_locale_applies_and_lang_picks_one_that_sticks() {
    let app = spawn_with(|c| c.hosted.default_locale = "fr".into()).await;
    let html = login_in(&app, None, "/login").await;
    assert!(html.contains("<html lang=\"fr\">"), "default_locale");
    let html = login_in(&app, Some("es"), "/login").await;
    assert!(html.contains("<html lang=\"fr\">"));
    let html = login_in(&app, Some("en"), "/login").await;
    assert!(
        html.contains("<html lang=\"en\">"),
        "the browser's wish wins"
    );

    let html = login_in(&app, Some("en"), "/login?lang=de").await;
    assert!(html.contains("<html lang=\"de\">"), "?lang= wins");
    let html = login_in(&app, Some("en"), "/signup").await;
    assert!(
        html.contains("<html lang=\"de\">"),
        "the pick is kept in a cookie"
    );
    let html = login_in(&app, Some("en"), "/login?lang=xx").await;
    assert!(
        html.contains("<html lang=\"de\">"),
        "an unknown pick is ignored"
    );

    // Error pages too.
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(html.contains("Nicht gefunden"), "{html}");
}

#[test]
fn default_locale_must_be_shipped() {
    let err = derp::config::Config::from_toml("[hosted]\ndefault_locale = \"xx\"\n")
        .expect_err("refused");
    assert!(err.to_string().contains("hosted.default_locale"), "{err}");
    let ok = derp::config::Config::from_toml("[hosted]\ndefault_locale = \"de\"\n");
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[tokio::test]
async fn sign_in_errors_are_translated() {
    let app = spawn_app().await;
    app.sign_up("ana@example.com").await;
    let html = login_in(&app, Some("fr"), "/login").await;
    let res = app
        .client
        .post(app.url("/login"))
        .header("accept-language", "fr")
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("email", "ana@example.com"),
            ("password", "wrong password here"),
        ])
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Cet e-mail et ce mot de passe ne correspondent pas"),
        "{html}"
    );
}

#[tokio::test]
async fn mail_goes_out_in_the_language_of_the_request() {
    let app = spawn_app().await;
    app.sign_up("ben@example.com").await;
    let html = login_in(&app, Some("de"), "/forgot-password").await;
    app.client
        .post(app.url("/forgot-password"))
        .header("accept-language", "de")
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("email", "ben@example.com"),
        ])
        .send()
        .await
        .unwrap();
    let mails = app.mails_to("ben@example.com", 1).await;
    let reset = mails
        .iter()
        .find(|m| m.kind == "reset")
        .expect("reset mail");
    assert!(reset.subject.contains("Passwort"), "{}", reset.subject);
    assert!(reset.text.contains("Hallo,"));
    assert!(reset.html.as_deref().unwrap().contains("lang=\"de\""));

    // The JSON API reads Accept-Language too.
    app.client
        .post(app.url("/api/v1/auth/password/recover"))
        .header("accept-language", "fr-FR")
        .json(&serde_json::json!({"email": "ben@example.com"}))
        .send()
        .await
        .unwrap();
    let mails = app.mails_to("ben@example.com", 2).await;
    let fr = mails
        .iter()
        .filter(|m| m.kind == "reset")
        .nth(1)
        .expect("second reset mail");
    assert!(fr.subject.contains("mot de passe"), "{}", fr.subject);
}
