//! The frame every dashboard page shares (navigation, who is signed in, the one-time notice) and
//! how a page is answered: HTML with a strict Content-Security-Policy, and an ETag so that the
//! live script's repeated requests for an unchanged page cost a 304 and no body.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Viewer;
use crate::api::error::ApiError;
use crate::api::idempotency::fnv1a64;

/// Scripts and styles only from the dashboard's own assets; no frames, no other origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The navigation's pages: path and title.
const NAV: [(&str, &str); 5] = [
    ("/", "Campaigns"),
    ("/decisions", "Decisions"),
    ("/approvals", "Approvals"),
    ("/orders", "Orders"),
    ("/agents", "Agents"),
];

/// A page to answer: its title, which navigation entry it belongs to, and its body.
pub struct Page<'a> {
    pub title: String,
    pub section: &'a str,
    pub body: Markup,
}

impl Page<'_> {
    /// The whole document for `viewer`, answered 200 (or 304 when `request` already holds it).
    pub fn render(self, viewer: &Viewer, request: &HeaderMap) -> Response {
        self.render_with(viewer, request, StatusCode::OK)
    }

    pub fn render_with(self, viewer: &Viewer, request: &HeaderMap, status: StatusCode) -> Response {
        let notice = viewer.session.notice.as_ref();
        let document = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    (head(&self.title))
                    script src="/assets/live.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" { "campaignd" }
                        nav {
                            @for (path, name) in NAV {
                                a href=(path) .current[self.section == path] { (name) }
                            }
                        }
                        form.who method="post" action="/logout" {
                            span { (viewer.caller.name()) " · " (role(viewer)) }
                            input type="hidden" name="csrf" value=(viewer.session.csrf);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                    @if let Some(notice) = notice {
                        p.notice.ok[notice.ok].bad[!notice.ok] role="status" { (notice.text) }
                    }
                    main id="live" data-refresh="5" {
                        h1 { (self.title) }
                        (self.body)
                    }
                }
            }
        };
        respond(request, status, document.into_string())
    }
}

/// What every document's `head` holds: its title, the viewport for phones, the stylesheet and the
/// icon (without one a browser asks for `/favicon.ico` on every page).
pub fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · campaignd" }
        link rel="stylesheet" href="/assets/style.css";
        link rel="icon" type="image/svg+xml" href="/assets/icon.svg";
    }
}

fn role(viewer: &Viewer) -> String {
    let role = viewer.caller.role().as_str();
    match &viewer.caller {
        crate::api::auth::Caller::Tenant { tenant, .. } => format!("{role} of {tenant}"),
        crate::api::auth::Caller::Operator { .. } => format!("{role}, every tenant"),
    }
}

/// An API error as a page: its status, and its message (which names what was wrong).
pub fn error(viewer: &Viewer, request: &HeaderMap, err: ApiError) -> Response {
    Page {
        title: "Not shown".into(),
        section: "",
        body: html! {
            p.error data-code=(err.code.as_str()) { (err.message) }
            p { a href="/" { "Back to the campaigns" } }
        },
    }
    .render_with(viewer, request, err.status())
}

/// `body` as HTML with the dashboard's headers; 304 when the request's `If-None-Match` is its
/// ETag.
pub fn respond(request: &HeaderMap, status: StatusCode, body: String) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a64(body.as_bytes()));
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged && status == StatusCode::OK {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (status, body).into_response()
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "private, no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// An amount with its currency, to two places (none for KRW and JPY, which have no minor unit).
pub fn money(amount: f64, currency: &str) -> String {
    let places = if matches!(currency, "KRW" | "JPY") {
        0
    } else {
        2
    };
    format!("{} {currency}", group(amount, places))
}

/// `value` with `places` decimals and thousands separated by commas.
pub fn group(value: f64, places: usize) -> String {
    let text = format!("{:.*}", places, value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && value.abs() >= 0.5 * 10f64.powi(-(places as i32)) {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

/// A share, 0 to 1, as a percentage to one place.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// The `page` query parameter: a whole number from 1, 1 when absent; anything else is named.
/// `path` with the non-empty `params` as its query string, each value encoded: filters echoed
/// from a request must not be able to add parameters of their own to a link.
pub fn link<'a>(
    path: &str,
    params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Where a form returns to: the page it names when that is one of this dashboard's own paths
/// (a form field is input, and must not send the browser to another site), else `fallback`.
pub fn back_to<'a>(named: &'a str, fallback: &'a str) -> &'a str {
    let own = named.starts_with('/') && !named.starts_with("//") && !named.contains('\\');
    if own { named } else { fallback }
}

pub fn page_number(value: Option<&String>) -> Result<usize, ApiError> {
    match value {
        None => Ok(1),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::bad_parameter(format!("`page` = `{v}` must be a whole number from 1"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_values_are_encoded_and_empty_ones_left_out() {
        assert_eq!(link("/orders", [("campaign", None)]), "/orders");
        assert_eq!(
            link(
                "/approvals",
                [
                    ("campaign", Some("a&state=all")),
                    ("state", Some("")),
                    ("kind", Some("buys"))
                ]
            ),
            "/approvals?campaign=a%26state%3Dall&kind=buys"
        );
    }

    #[test]
    fn a_form_returns_only_to_a_page_of_the_dashboard() {
        assert_eq!(
            back_to("/orders?campaign=a", "/orders"),
            "/orders?campaign=a"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(back_to(elsewhere, "/orders"), "/orders", "{elsewhere}");
        }
    }

    #[test]
    fn amounts_read_as_a_person_writes_them() {
        assert_eq!(money(1234567.891, "USD"), "1,234,567.89 USD");
        assert_eq!(money(1234567.891, "KRW"), "1,234,568 KRW");
        assert_eq!(money(0.0, "USD"), "0.00 USD");
        assert_eq!(money(-12.5, "EUR"), "-12.50 EUR");
        assert_eq!(group(999.0, 0), "999");
        assert_eq!(group(1000.0, 0), "1,000");
        assert_eq!(percent(0.1234), "12.3 %");
    }

    #[test]
    fn an_unchanged_page_is_a_304_and_every_page_has_its_policy() {
        let first = respond(&HeaderMap::new(), StatusCode::OK, "<p>x</p>".into());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert!(
            first
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = respond(&again, StatusCode::OK, "<p>x</p>".into());
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        let changed = respond(&again, StatusCode::OK, "<p>y</p>".into());
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn page_numbers_are_checked() {
        assert_eq!(page_number(None).unwrap(), 1);
        assert_eq!(page_number(Some(&"3".to_owned())).unwrap(), 3);
        for bad in ["0", "-1", "x"] {
            let err = page_number(Some(&bad.to_owned())).unwrap_err();
            assert!(err.message.contains("`page`"), "{}", err.message);
        }
    }
}
