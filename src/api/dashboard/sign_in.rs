//! Signing in with an API token and out again. The sign-in form carries a CSRF token that must
//! match the one in a short-lived cookie set with the form (a site cannot sign a browser in to
//! someone else's session), and a sign-out is a form post with the session's own CSRF token.

use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::page::{head, respond};
use super::session::{self, COOKIE, IDLE, SIGN_IN_COOKIE};
use crate::api::ApiState;

/// How long a sign-in form stays good.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);

fn document(csrf: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body.sign-in {
                main {
                    h1 { "campaignd" }
                    p { "Sign in with an API token from " code { "[api]" } " (" code { "tokens" } " or " code { "tokens_file" } "). A tenant's token shows that tenant only." }
                    @if let Some(problem) = problem {
                        p.notice.bad role="alert" { (problem) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="token" { "API token" }
                        input id="token" name="token" type="password" autocomplete="current-password" required;
                        button type="submit" id="sign-in" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// The sign-in form, with a fresh CSRF token in the form and in its cookie.
pub async fn form(headers: HeaderMap) -> Response {
    let csrf = session::random_token();
    answer(&headers, StatusCode::OK, &csrf, None)
}

fn answer(headers: &HeaderMap, status: StatusCode, csrf: &str, problem: Option<&str>) -> Response {
    let mut response = respond(headers, status, document(csrf, problem).into_string());
    let cookie = session::set_cookie(SIGN_IN_COOKIE, csrf, FORM_LIFETIME);
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// Signs in: the form's CSRF token must be its cookie's, and the token one of `[api]`'s.
pub async fn submit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let fresh = session::random_token();
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same(expected, &form.csrf) {
        return answer(
            &headers,
            StatusCode::FORBIDDEN,
            &fresh,
            Some(
                "This sign-in form has expired or did not come from this dashboard; sign in again.",
            ),
        );
    }
    let tokens = &state.settings().config.api.tokens;
    let Some(id) = state
        .sessions()
        .sign_in(tokens, form.token.trim(), Instant::now())
    else {
        return answer(
            &headers,
            StatusCode::UNAUTHORIZED,
            &fresh,
            Some("That token is not one of the tokens in [api] (tokens or tokens_file)."),
        );
    };
    let mut response = Redirect::to("/").into_response();
    for cookie in [
        session::set_cookie(COOKIE, &id, IDLE),
        session::set_cookie(SIGN_IN_COOKIE, "", Duration::ZERO),
    ] {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// Signs out: the session is forgotten and its cookie removed.
pub async fn sign_out(
    State(state): State<ApiState>,
    viewer: Viewer,
    Form(form): Form<SignOut>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.refuse_forgery();
    }
    state.sessions().sign_out(&viewer.session_id);
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = session::set_cookie(COOKIE, "", Duration::ZERO).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
