//! `/oauth2/authorize` and `/oauth2/consent`.

use super::{PageResult, provider};
use crate::auth::native::provider::CodeGrant;
use crate::domain::i18n::Tr;
use crate::domain::redirect::with_query;
use crate::http::pages::{Chrome, Ctx, PageError, PageForm, non_empty};
use crate::services::oidc::{Client, requested_scopes};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// Carried in the return address when the browser is sent to sign in: the
/// time from which a sign-in counts as fresh for `prompt=login` and
/// `max_age`. It can only ask for a later sign-in than the request's own
/// parameters already do.
const LOGIN_AFTER: &str = "derp_login_after";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    max_age: Option<String>,
    login_hint: Option<String>,
    derp_login_after: Option<String>,
}

/// An error for the client, at its registered `redirect_uri`.
fn to_client(
    ctx: &Ctx,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    text: &str,
) -> HttpResponse {
    let mut pairs = vec![("error", error), ("error_description", text)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    let iss = ctx.state.issuer.clone();
    pairs.push(("iss", iss.as_str()));
    ctx.redirect(&with_query(redirect_uri, &pairs))
}

#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentPage {
    c: Chrome,
    client_name: String,
    scopes: Vec<(String, &'static str)>,
    request: String,
}

fn scope_text(scope: &str, tr: Tr) -> &'static str {
    match scope {
        "openid" => tr.t("consent.scope_openid"),
        "email" => tr.t("consent.scope_email"),
        "profile" => tr.t("consent.scope_profile"),
        "offline_access" => tr.t("consent.scope_offline"),
        "orgs" => tr.t("consent.scope_orgs"),
        _ => tr.t("consent.scope_other"),
    }
}

/// `POST /oauth2/authorize` (OpenID Connect Core 3.1.2.1): the same request
/// as a form body. It changes nothing by itself (the sign-in and consent
/// forms that follow carry their CSRF tokens), so it is answered with the
/// GET form of the same request.
pub(super) async fn authorize_post(body: web::Bytes) -> HttpResponse {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(&body))
        .finish();
    HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/oauth2/authorize?{query}"),
        ))
        .finish()
}

pub(super) async fn authorize(
    mut ctx: Ctx,
    req: HttpRequest,
    q: web::Query<AuthorizeQuery>,
) -> PageResult {
    let oidc = provider(&ctx)?;
    let q = q.into_inner();
    // 1. The client and its redirect URI: errors are pages, never redirects.
    let client_id = non_empty(&q.client_id)
        .ok_or_else(|| PageError::BadRequest("client_id is missing.".into()))?;
    let client: Client = oidc.client(&client_id).await?.ok_or_else(|| {
        PageError::BadRequest("This application is not registered here (unknown client_id).".into())
    })?;
    let redirect_uri = non_empty(&q.redirect_uri)
        .ok_or_else(|| PageError::BadRequest("redirect_uri is missing.".into()))?;
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(PageError::BadRequest(
            "This redirect_uri is not registered for the application: it will not be sent there."
                .into(),
        ));
    }
    let state = non_empty(&q.state);
    let fail = |ctx: &Ctx, error: &str, text: &str| {
        Ok(to_client(ctx, &redirect_uri, state.as_deref(), error, text))
    };
    // 2. The request itself: errors go back to the client.
    if q.response_type.as_deref() != Some("code") {
        return fail(
            &ctx,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let scopes = match requested_scopes(q.scope.as_deref(), &client) {
        Ok(s) => s,
        Err(bad) => {
            return fail(
                &ctx,
                "invalid_scope",
                &format!("scope `{bad}` is not allowed for this client"),
            );
        }
    };
    let challenge = non_empty(&q.code_challenge);
    match (&challenge, non_empty(&q.code_challenge_method).as_deref()) {
        (Some(_), Some("S256")) => {}
        (Some(_), _) => {
            return fail(
                &ctx,
                "invalid_request",
                "code_challenge_method must be S256",
            );
        }
        (None, Some(_)) => {
            return fail(
                &ctx,
                "invalid_request",
                "code_challenge_method without code_challenge",
            );
        }
        (None, None) if client.is_public() => {
            return fail(
                &ctx,
                "invalid_request",
                "a public client must use PKCE (code_challenge, S256)",
            );
        }
        (None, None) => {}
    }
    if let Some(c) = &challenge
        && !crate::auth::native::valid_challenge(c)
    {
        return fail(
            &ctx,
            "invalid_request",
            "code_challenge must be 43 base64url characters (S256)",
        );
    }
    let prompt: Vec<String> = non_empty(&q.prompt)
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(p) = prompt
        .iter()
        .find(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return fail(
            &ctx,
            "invalid_request",
            &format!("unknown prompt value `{p}`"),
        );
    }
    let prompt_has = |v: &str| prompt.iter().any(|p| p == v);
    if prompt_has("none") && prompt.len() > 1 {
        return fail(
            &ctx,
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    let max_age = match non_empty(&q.max_age) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return fail(
                    &ctx,
                    "invalid_request",
                    "max_age must be a non-negative integer",
                );
            }
        },
    };
    let login_after: Option<i64> = non_empty(&q.derp_login_after).and_then(|v| v.parse().ok());
    // 3. Who is signed in, and since when.
    let now = ctx.state.clock.unix();
    let signed_in = match (&ctx.user, &ctx.web.sid) {
        (Some(user), Some(sid)) => match ctx.state.native.as_ref() {
            Some(native) => native
                .provider_auth_time(sid)
                .await
                .ok()
                .map(|t| (user.clone(), sid.clone(), t)),
            None => None,
        },
        _ => None,
    };
    let fresh_enough = |auth_time: i64| match login_after {
        // Back from the sign-in this request sent the browser to.
        Some(after) => auth_time >= after,
        None => !prompt_has("login") && max_age.is_none_or(|m| now - auth_time <= m),
    };
    let Some((user, sid, auth_time)) = signed_in.filter(|(_, _, t)| fresh_enough(*t)) else {
        if prompt_has("none") {
            return fail(&ctx, "login_required", "the user is not signed in");
        }
        // To the hosted sign-in, and back here with this request.
        let mut back = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            if k != LOGIN_AFTER {
                back.append_pair(&k, &v);
            }
        }
        if prompt_has("login") || max_age.is_some() {
            back.append_pair(LOGIN_AFTER, &now.to_string());
        }
        let back = format!(
            "{}/oauth2/authorize?{}",
            ctx.state.config.public_url(),
            back.finish()
        );
        let mut login = vec![("redirect_to", back.as_str())];
        let hint = non_empty(&q.login_hint);
        if let Some(h) = &hint {
            login.push(("login_hint", h.as_str()));
        }
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in login {
            s.append_pair(k, v);
        }
        if let Some(old) = ctx.user.take() {
            // A sign-in again: the old login session ends, a new one starts.
            ctx.state.backend.sign_out(&old, false, &ctx.meta).await?;
            ctx.web = crate::http::pages::session::WebSession::anonymous();
        }
        return Ok(ctx.redirect(&format!("/login?{}", s.finish())));
    };
    // 4. Consent, for clients that are not first party.
    if !client.first_party {
        let given = match ctx.state.native.as_ref() {
            Some(native) => native.provider_consent(&user.user_id, &client.id).await?,
            None => None,
        };
        let covered = given.is_some_and(|g| scopes.iter().all(|s| g.contains(s)));
        if !covered || prompt_has("consent") {
            if prompt_has("none") {
                return fail(
                    &ctx,
                    "consent_required",
                    "the user has not consented to this client",
                );
            }
            // The request goes through the form and back here unchanged
            // (no longer asking for consent once it is given).
            let mut again = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
                if k == "prompt" {
                    let rest: Vec<&str> = v
                        .split(' ')
                        .filter(|p| *p != "consent" && !p.is_empty())
                        .collect();
                    if !rest.is_empty() {
                        again.append_pair("prompt", &rest.join(" "));
                    }
                } else {
                    again.append_pair(&k, &v);
                }
            }
            let page = ConsentPage {
                c: ctx.chrome_t("consent.title"),
                client_name: client.name.clone(),
                scopes: scopes
                    .iter()
                    .map(|s| (s.clone(), scope_text(s, ctx.tr)))
                    .collect(),
                request: again.finish(),
            };
            return ctx.render(StatusCode::OK, &page);
        }
    }
    // 5. The code.
    let native = ctx.state.native.clone().ok_or(PageError::NotFound)?;
    let code = native
        .provider_issue_code(CodeGrant {
            client_id: client.id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: redirect_uri.clone(),
            scopes,
            nonce: non_empty(&q.nonce),
            code_challenge: challenge,
            auth_time,
            amr: user.amr.clone(),
            sid,
        })
        .await?;
    let iss = ctx.state.issuer.clone();
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &state {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("iss", iss.as_str()));
    Ok(ctx.redirect(&with_query(&redirect_uri, &pairs)))
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsentForm {
    /// The authorization request, as its query string.
    request: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
}

/// The consent form: remembered on `allow` and the request resumes; on
/// `deny` the client hears `access_denied`.
pub(super) async fn consent_submit(PageForm { ctx, form }: PageForm<ConsentForm>) -> PageResult {
    let oidc = provider(&ctx)?;
    let request = form.request.unwrap_or_default();
    let q: AuthorizeQuery = serde_urlencoded::from_str(&request).map_err(|_| {
        PageError::BadRequest("The authorization request could not be read.".into())
    })?;
    let client_id = non_empty(&q.client_id).unwrap_or_default();
    let client = oidc.client(&client_id).await?.ok_or_else(|| {
        PageError::BadRequest("This application is not registered here (unknown client_id).".into())
    })?;
    let redirect_uri = non_empty(&q.redirect_uri).unwrap_or_default();
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(PageError::BadRequest(
            "This redirect_uri is not registered for the application: it will not be sent there."
                .into(),
        ));
    }
    let Some(user) = ctx.user.clone() else {
        return Ok(ctx.redirect(&format!("/oauth2/authorize?{request}")));
    };
    match form.decision.as_deref() {
        Some("allow") => {
            let scopes = requested_scopes(q.scope.as_deref(), &client).map_err(|bad| {
                PageError::BadRequest(format!("scope `{bad}` is not allowed for this client"))
            })?;
            let native = ctx.state.native.clone().ok_or(PageError::NotFound)?;
            native
                .provider_grant_consent(&user.user_id, &client.id, &scopes, &ctx.meta)
                .await?;
            Ok(ctx.redirect(&format!("/oauth2/authorize?{request}")))
        }
        Some("deny") => Ok(to_client(
            &ctx,
            &redirect_uri,
            non_empty(&q.state).as_deref(),
            "access_denied",
            "the user denied the request",
        )),
        _ => Err(PageError::BadRequest(
            "decision must be allow or deny.".into(),
        )),
    }
}
