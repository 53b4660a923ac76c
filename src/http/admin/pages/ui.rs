//! The console's shared pieces: short dates with the full time in a
//! tooltip, list state (search, sort, page) as links, the pager, the one
//! confirmation step of every destructive action, and the overview chart.

use super::PageResult;
use crate::http::pages::{Chrome, Ctx};
use crate::services::admin::{DayCount, Paged};
use actix_web::http::StatusCode;
use askama::Template;
use time::OffsetDateTime;

fn full(t: &OffsetDateTime) -> String {
    crate::http::pages::account::show_time(t)
}

fn iso(t: &OffsetDateTime) -> String {
    crate::http::pages::account::rfc3339(t)
}

/// `<time>` with "30 Nov 2026, 17:58 UTC" shown (kept on one line) and the
/// full UTC time as its title; `static/local-time.js` shows the browser's
/// local time instead.
pub fn when(t: impl std::borrow::Borrow<OffsetDateTime>) -> String {
    let t = t.borrow();
    let f = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    format!(
        r#"<time class="when" datetime="{}" title="{}">{}</time>"#,
        iso(t),
        full(t),
        t.format(&f).unwrap_or_default()
    )
}

/// `<time>` with the day only ("30 Nov 2026"); the full time as its title.
/// `data-day`: the script shows the local day, without the time.
pub fn day(t: impl std::borrow::Borrow<OffsetDateTime>) -> String {
    let t = t.borrow();
    let f = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    format!(
        r#"<time class="when" data-day datetime="{}" title="{}">{}</time>"#,
        iso(t),
        full(t),
        t.format(&f).unwrap_or_default()
    )
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A list's search, sort and page, as the links of its headers and pager.
#[derive(Debug, Clone)]
pub struct ListState {
    pub path: &'static str,
    pub q: String,
    pub sort: &'static str,
    pub desc: bool,
    pub page: i64,
    /// Other filters kept in every link: `(name, value)`.
    pub extra: Vec<(&'static str, String)>,
}

impl ListState {
    pub fn href(&self, sort: &str, desc: bool, page: i64) -> String {
        let mut query = format!(
            "?q={}&sort={}&dir={}",
            enc(&self.q),
            enc(sort),
            if desc { "desc" } else { "asc" }
        );
        for (k, v) in &self.extra {
            if !v.is_empty() {
                query.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        if page > 1 {
            query.push_str(&format!("&page={page}"));
        }
        format!("{}{query}", self.path)
    }

    /// The header link: the other direction on the current column, else
    /// the column's natural one (dates and counts newest/largest first).
    pub fn sort_href(&self, key: &str) -> String {
        let desc = if key == self.sort {
            !self.desc
        } else {
            !matches!(key, "email" | "name")
        };
        self.href(key, desc, 1)
    }

    pub fn aria_sort(&self, key: &str) -> &'static str {
        match (key == self.sort, self.desc) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        }
    }

    pub fn arrow(&self, key: &str) -> &'static str {
        match (key == self.sort, self.desc) {
            (false, _) => "",
            (true, true) => " ↓",
            (true, false) => " ↑",
        }
    }

    pub fn pager<T>(&self, p: &Paged<T>) -> Pager {
        Pager {
            range: p.range(),
            prev: p
                .has_prev()
                .then(|| self.href(self.sort, self.desc, p.page - 1)),
            next: p
                .has_next()
                .then(|| self.href(self.sort, self.desc, p.page + 1)),
        }
    }
}

/// "1–50 of 1,234" with links to the pages before and after.
#[derive(Debug, Clone)]
pub struct Pager {
    pub range: String,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// The step every destructive action takes first: what will happen, and a
/// button that posts the action again with `confirmed=yes` (and, for
/// deletions, the name typed).
#[derive(Debug, Clone, Default)]
pub struct Confirm {
    /// "Delete alice@example.com?"
    pub title: String,
    /// What happens, one sentence each.
    pub consequences: Vec<String>,
    /// Where the confirmed form posts.
    pub action: String,
    /// Fields carried over from the first form.
    pub fields: Vec<(String, String)>,
    pub button: String,
    /// Where "Cancel" goes.
    pub cancel: String,
    /// For deletions: the text to type (an email or a slug).
    pub type_to_confirm: Option<String>,
    pub error: Option<String>,
}

/// Whether a destructive action's form carries the confirmation step's mark.
pub fn confirmed(v: &Option<String>) -> bool {
    v.as_deref() == Some("yes")
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    c: Chrome,
    k: Confirm,
}

/// Shows the confirmation step (nothing has changed yet).
pub fn confirm_page(mut ctx: Ctx, k: Confirm) -> PageResult {
    let status = if k.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ConfirmPage {
        c: ctx.chrome(&k.title.clone()),
        k,
    };
    ctx.render(status, &page)
}

/// The overview's chart: sign-ins and sign-ups per day as bars, in SVG
/// (no script). The numbers are in the title of each bar and in the table
/// that follows it on the page.
pub fn activity_svg(days: &[DayCount]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    const BASE: f64 = 140.0;
    let max = days
        .iter()
        .map(|d| d.sign_ins.max(d.sign_ups))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = W / days.len().max(1) as f64;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let total_in: i64 = days.iter().map(|d| d.sign_ins).sum();
    let total_up: i64 = days.iter().map(|d| d.sign_ups).sum();
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let mut out = format!(
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="none">
<title id="chart-title">Sign-ins and sign-ups per day, last {n} days</title>
<desc id="chart-desc">{total_in} sign-ins and {total_up} sign-ups in {n} days; the busiest day had {max} of one kind. The numbers per day are in the table below.</desc>
<line x1="0" y1="{BASE}" x2="{W}" y2="{BASE}" class="axis"/>
"##,
        n = days.len(),
        max = max as i64,
    );
    for (i, d) in days.iter().enumerate() {
        let x = i as f64 * slot;
        let date = d.day.format(&f).unwrap_or_default();
        for (j, (n, class, label)) in [
            (d.sign_ins, "bar-in", "sign-ins"),
            (d.sign_ups, "bar-up", "sign-ups"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = (n as f64 / max * (BASE - 10.0)).max(if n > 0 { 2.0 } else { 0.0 });
            out.push_str(&format!(
                r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{date}: {n} {label}</title></rect>
"#,
                x + j as f64 * (bar + 1.0),
                BASE - h,
            ));
        }
    }
    let first = days.first().map(|d| d.day.format(&f).unwrap_or_default());
    let last = days.last().map(|d| d.day.format(&f).unwrap_or_default());
    out.push_str(&format!(
        r#"<text x="0" y="156" class="tick">{}</text><text x="{W}" y="156" text-anchor="end" class="tick">{}</text>
</svg>"#,
        first.unwrap_or_default(),
        last.unwrap_or_default()
    ));
    out
}

/// "2026-11-30"
pub fn ymd(t: impl std::borrow::Borrow<OffsetDateTime>) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    t.borrow().format(&f).unwrap_or_default()
}
