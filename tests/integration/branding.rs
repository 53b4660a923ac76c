//! Branding beyond colours: a custom stylesheet served after derp's own,
//! error pages with the product's name, and a warning from
//! `validate-config` for a brand colour no text colour reads well on.

use crate::helpers::*;
use derp::config::Config;

#[tokio::test]
async fn a_custom_stylesheet_is_served_and_linked_after_derps() {
    let dir = tempfile::tempdir().unwrap();
    let css = dir.path().join("brand.css");
    std::fs::write(&css, "body { font-family: serif; }\n").unwrap();
    let toml = format!(
        "[hosted]\nproduct_name = \"Acme\"\ncustom_css = {:?}\n",
        css
    );
    let parsed = Config::from_toml(&toml).unwrap();
    let app = spawn_with(move |c| c.hosted = parsed.hosted).await;
    let res = app
        .client
        .get(app.url("/static/custom.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(res.text().await.unwrap(), "body { font-family: serif; }\n");
    let html = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let theme = html.find("/static/theme.css").unwrap();
    let custom = html.find("/static/custom.css").expect("linked");
    assert!(custom > theme, "after derp's stylesheets");

    // Error pages carry the product's name and the stylesheet too.
    let res = app
        .client
        .get(app.url("/nothing/here"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("Acme"), "{html}");
    assert!(html.contains("/static/custom.css"));
}

#[tokio::test]
async fn without_a_custom_stylesheet_none_is_linked() {
    let app = spawn_app().await;
    let html = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("custom.css"));
}

#[test]
fn a_missing_custom_stylesheet_is_refused() {
    let err =
        Config::from_toml("[hosted]\ncustom_css = \"/no/such/file.css\"\n").expect_err("refused");
    assert!(err.to_string().contains("hosted.custom_css"), "{err}");
}

#[test]
fn validate_config_warns_about_an_unreadable_brand_colour() {
    // Mid grey: neither white nor dark text reaches 4.5:1.
    let grey = Config::from_toml("[hosted]\nprimary_color = \"#777777\"\n").unwrap();
    assert!(
        grey.warnings()
            .iter()
            .any(|w| w.contains("primary_color") && w.contains("4.5:1")),
        "{:?}",
        grey.warnings()
    );
    for fine in ["#4f46e5", "#facc15"] {
        let c = Config::from_toml(&format!("[hosted]\nprimary_color = \"{fine}\"\n")).unwrap();
        assert!(
            !c.warnings().iter().any(|w| w.contains("primary_color")),
            "{fine}: {:?}",
            c.warnings()
        );
    }
}
