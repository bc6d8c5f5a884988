//! Approval notifications: the `[webhook]` is told of every new approval request, of one still
//! unanswered after `escalate_after` of its time (an escalation), and of every expiry, so that a
//! person hears of a decision waiting for them without watching the API.
//!
//! The approval book is the source: it writes a notice of each new request and each expiry in
//! the same batch as the change, and keeps its pending requests apart. Once a second the notifier
//! sends the notices (forgetting each once delivered or given up) and the escalations of the
//! pending requests (remembered in a small tree beside the book, `aux/notifications`, while their
//! request waits), so a restart or a crash never loses a notification, and a round reads what
//! waits, never the history. Delivery is at least once: a receiver drops repeats by the
//! `X-Campaignd-Delivery` header. Each delivery is a JSON POST signed with HMAC-SHA256 over
//! `<timestamp>.<body>` (`X-Campaignd-Timestamp`, `X-Campaignd-Signature: sha256=<hex>`), so a
//! receiver can check who sent it and refuse a replay. A failed delivery (no answer within
//! `timeout_secs`, or a status other than 2xx) is tried again after a backoff that doubles up to
//! `backoff_max_ms`, and given up after `max_attempts`; every attempt is counted in
//! `campaignd_webhook_deliveries_total`. Without a webhook the notices are dropped, and so are
//! events more than a day old when first seen (after a long stop).
//!
//! The same round names the campaign of each request past its expiry to the campaign loop
//! ([`Wake`]), so a day held for the request runs again and takes the expiry's default at once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use super::signed::signature;
use super::wake::Wake;
use crate::agents::approvals::{ApprovalBook, Listed, Notice};
use crate::kb::{DecisionId, KbError, KnowledgeBase};
use crate::runtime::Clock;
use crate::settings::LiveSettings;
use crate::settings::config::WebhookSettings;

/// Deliveries by `event` and `result` (`delivered`, `failed`, `given_up`).
pub const DELIVERIES: &str = "campaignd_webhook_deliveries_total";

/// How often the book is compared with what was sent.
const ROUND: Duration = Duration::from_secs(1);

/// Events older than this when first seen are history, not news.
const STALE: chrono::Duration = chrono::Duration::days(1);

/// What a notification tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Requested,
    Escalated,
    Expired,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Requested => "approval.requested",
            Event::Escalated => "approval.escalated",
            Event::Expired => "approval.expired",
        }
    }
}

/// One notification due: what, about which request, since when, and the book's notice it
/// tells (none for an escalation, which the notifier remembers itself).
#[derive(Debug)]
pub struct Due<'a> {
    pub event: Event,
    pub request: &'a Listed,
    pub at: DateTime<Utc>,
    pub notice: Option<&'a [u8]>,
}

impl Due<'_> {
    /// The delivery's id, the same on every attempt: `<request>/<event>`.
    pub fn delivery(&self) -> String {
        format!("{}/{}", self.request.id, self.event.as_str())
    }

    /// Whether it is more than a day old, history rather than news.
    pub fn stale(&self, now: DateTime<Utc>) -> bool {
        now - self.at > STALE
    }
}

/// The notifications due at `now`: each of the book's `notices` (a new request, an expiry), and
/// an escalation of each `pending` request once `escalate_after` of its time has passed (never
/// with 1). What was sent already is the caller's to skip.
pub fn due<'a>(
    pending: &'a [Listed],
    notices: &'a [(Vec<u8>, Notice, Listed)],
    now: DateTime<Utc>,
    escalate_after: f64,
) -> Vec<Due<'a>> {
    let mut out: Vec<Due<'a>> = notices
        .iter()
        .map(|(key, notice, request)| match notice {
            Notice::Requested => Due {
                event: Event::Requested,
                request,
                at: request.requested_at,
                notice: Some(key.as_slice()),
            },
            Notice::Expired => Due {
                event: Event::Expired,
                request,
                at: request.answer.as_ref().map_or(request.expires_at, |a| a.at),
                notice: Some(key.as_slice()),
            },
        })
        .collect();
    if escalate_after < 1.0 {
        for request in pending {
            let window = (request.expires_at - request.requested_at).num_milliseconds() as f64;
            let at = request.requested_at
                + chrono::Duration::milliseconds((window * escalate_after) as i64);
            if now >= at {
                out.push(Due {
                    event: Event::Escalated,
                    request,
                    at,
                    notice: None,
                });
            }
        }
    }
    out
}

/// The wait after the `failures`-th failed attempt: `initial`, doubled per failure, at most `max`.
pub fn backoff(failures: u32, initial_ms: u64, max_ms: u64) -> Duration {
    let doubled = initial_ms.saturating_mul(1u64 << failures.saturating_sub(1).min(40));
    Duration::from_millis(doubled.min(max_ms))
}

/// What a delivery's body holds.
#[derive(Serialize)]
struct Body<'a> {
    event: &'static str,
    delivery: &'a str,
    sent_at: DateTime<Utc>,
    /// `pending`, `approved`, `rejected` or `expired` when sent.
    state: &'static str,
    approval: &'a Listed,
}

/// A delivery being retried.
struct Retry {
    failures: u32,
    next: Instant,
}

/// The running notifier; [`RunningNotifier::stop`] ends it.
pub struct RunningNotifier {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningNotifier {
    /// Stops after the delivery in progress, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(%e, "the approval notifier ended abnormally");
        }
    }
}

/// Starts the notifier on `kb`'s approval book; it reads `[webhook]` from `settings` at every
/// round, so a reload changes the endpoint, the secret or the backoff without a restart.
pub fn spawn(
    kb: &KnowledgeBase,
    settings: LiveSettings,
    wake: Wake,
) -> Result<RunningNotifier, KbError> {
    let notifier = Notifier {
        book: ApprovalBook::open(kb)?,
        sent: kb.auxiliary_tree("notifications")?,
        settings,
        retries: HashMap::new(),
        wake,
        woken: HashSet::new(),
    };
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(notifier.run(stopped));
    Ok(RunningNotifier { stop, task })
}

struct Notifier {
    book: ApprovalBook,
    /// The escalations done (delivered or given up) of requests still pending, by delivery id.
    sent: sled::Tree,
    settings: LiveSettings,
    retries: HashMap<String, Retry>,
    /// Runs again the held day of a campaign whose request reached its expiry, so the expiry's
    /// default applies then rather than at the next campaign day.
    wake: Wake,
    /// The requests past their expiry it has woken a campaign for.
    woken: HashSet<DecisionId>,
}

impl Notifier {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(ROUND);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tick.tick() => self.round().await,
            }
        }
    }

    /// Wakes the campaigns of requests past their expiry, and sends every notification due and
    /// not yet done whose retry time has come.
    async fn round(&mut self) {
        let read = self
            .book
            .pending()
            .and_then(|p| Ok((p, self.book.notices()?)));
        let (pending, notices) = match read {
            Ok(read) => read,
            Err(err) => {
                tracing::warn!(%err, "cannot read the approval book for notifications");
                return;
            }
        };
        let (now, started) = (Clock::wall_now(), Instant::now());
        self.woken.retain(|id| pending.iter().any(|p| p.id == *id));
        for request in pending.iter().filter(|l| l.expires_at <= now) {
            if self.woken.insert(request.id) {
                self.wake.campaign(&request.campaign);
            }
        }
        self.forget_escalations(&pending);
        let webhook = self.settings.current().config.webhook.clone();
        for due in due(&pending, &notices, now, webhook.escalate_after) {
            let delivery = due.delivery();
            match self.sent.contains_key(delivery.as_bytes()) {
                Ok(false) => {}
                Ok(true) => continue,
                Err(err) => {
                    tracing::warn!(%err, "cannot read the notifications sent");
                    return;
                }
            }
            // Without a webhook, or too old to be news when first tried, it is told to nobody;
            // one being retried goes on until delivered or given up.
            if webhook.url.is_empty() || (due.stale(now) && !self.retries.contains_key(&delivery)) {
                self.done(&due, &delivery);
                continue;
            }
            // A slow webhook must not hold back the next round's wake: the rest waits for it.
            if started.elapsed() > ROUND {
                break;
            }
            if self
                .retries
                .get(&delivery)
                .is_some_and(|r| r.next > Instant::now())
            {
                continue;
            }
            let result = deliver(&webhook, &due, &delivery).await;
            self.settle(&webhook, &due, delivery, result);
        }
    }

    /// Records how one attempt went: done when delivered or out of attempts, else retried.
    fn settle(
        &mut self,
        webhook: &WebhookSettings,
        due: &Due<'_>,
        delivery: String,
        result: Result<(), String>,
    ) {
        let event = due.event.as_str();
        let failures = self.retries.get(&delivery).map_or(0, |r| r.failures);
        let outcome = match result {
            Ok(()) => "delivered",
            Err(why) => {
                metrics::counter!(DELIVERIES, "event" => event, "result" => "failed").increment(1);
                let failures = failures + 1;
                if failures < webhook.max_attempts {
                    let wait =
                        backoff(failures, webhook.backoff_initial_ms, webhook.backoff_max_ms);
                    tracing::warn!(%delivery, event, attempt = failures, %why, retry_in_ms = wait.as_millis() as u64, "approval notification not delivered; retried");
                    self.retries.insert(
                        delivery,
                        Retry {
                            failures,
                            next: Instant::now() + wait,
                        },
                    );
                    return;
                }
                tracing::error!(%delivery, event, attempts = failures, %why, "approval notification given up");
                "given_up"
            }
        };
        metrics::counter!(DELIVERIES, "event" => event, "result" => outcome).increment(1);
        self.retries.remove(&delivery);
        self.done(due, &delivery);
    }

    /// Marks `due` done, delivered or not: the book's notice is forgotten, an escalation
    /// remembered while its request waits. A mark that fails is sent again at the next round,
    /// which a receiver drops by its id.
    fn done(&mut self, due: &Due<'_>, delivery: &str) {
        let marked = match due.notice {
            Some(key) => self.book.told(key),
            None => self
                .sent
                .insert(delivery.as_bytes(), b"".as_slice())
                .map(|_| ())
                .map_err(|e| KbError::Storage {
                    path: "aux/notifications".into(),
                    reason: e.to_string(),
                }),
        };
        if let Err(err) = marked {
            tracing::warn!(%err, %delivery, "cannot record a notification as done");
        }
    }

    /// Forgets the escalations of requests no longer pending, so the table holds only what waits.
    fn forget_escalations(&self, pending: &[Listed]) {
        for item in self.sent.iter().keys() {
            let Ok(key) = item else { continue };
            let id = String::from_utf8_lossy(&key);
            let waiting = pending.iter().any(|p| id.starts_with(&p.id.to_string()));
            if !waiting && let Err(err) = self.sent.remove(&key) {
                tracing::warn!(%err, "cannot forget a notification sent");
            }
        }
    }
}

/// One signed POST of `due` to the webhook, on a blocking thread (the HTTP client is blocking).
async fn deliver(webhook: &WebhookSettings, due: &Due<'_>, delivery: &str) -> Result<(), String> {
    let sent_at = Clock::wall_now();
    let body = Body {
        event: due.event.as_str(),
        delivery,
        sent_at,
        state: due.request.state(),
        approval: due.request,
    };
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let headers = vec![
        ("X-Campaignd-Event", due.event.as_str().to_owned()),
        ("X-Campaignd-Delivery", delivery.to_owned()),
    ];
    super::signed::post(
        &webhook.url,
        &webhook.secret,
        webhook.timeout_secs,
        sent_at.timestamp(),
        headers,
        body,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::approvals::tests::{expired as expired_at, listed};

    fn request(minutes_ago: i64, expires_in: i64, now: DateTime<Utc>) -> Listed {
        listed(
            now - chrono::Duration::minutes(minutes_ago),
            now + chrono::Duration::minutes(expires_in),
        )
    }

    fn events(due: &[Due<'_>]) -> Vec<Event> {
        due.iter().map(|d| d.event).collect()
    }

    #[test]
    fn the_books_notices_are_due_and_a_pending_request_is_escalated_past_its_share() {
        let now = Utc::now();
        let fresh = [request(10, 50, now)];
        assert!(due(&fresh, &[], now, 0.5).is_empty());
        let late = [request(40, 20, now)];
        let escalated = due(&late, &[], now, 0.5);
        assert_eq!(events(&escalated), [Event::Escalated]);
        assert!(escalated[0].notice.is_none());
        assert_eq!(
            escalated[0].delivery(),
            format!("{}/approval.escalated", late[0].id)
        );
        assert!(due(&late, &[], now, 1.0).is_empty());

        let mut expired = request(60, 0, now);
        expired.answer = Some(expired_at(now));
        let notices = [
            (b"q".to_vec(), Notice::Requested, fresh[0].clone()),
            (b"x".to_vec(), Notice::Expired, expired),
        ];
        let told = due(&[], &notices, now, 0.5);
        assert_eq!(events(&told), [Event::Requested, Event::Expired]);
        assert_eq!(told[1].at, now, "an expiry is dated by its answer");
        assert_eq!(told[0].notice, Some(b"q".as_slice()));
        assert!(told.iter().all(|d| !d.stale(now)));
        let history = [(
            b"q".to_vec(),
            Notice::Requested,
            request(3 * 24 * 60, -2 * 24 * 60, now),
        )];
        assert!(due(&[], &history, now, 0.5)[0].stale(now));
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let waits: Vec<u64> = (1..=6)
            .map(|n| backoff(n, 1_000, 10_000).as_millis() as u64)
            .collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(
            backoff(1_000, u64::MAX, u64::MAX).as_millis(),
            u64::MAX as u128
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_and_the_body() {
        // The vector is Python's hmac.new(key, b"1767225600." + body, hashlib.sha256).
        assert_eq!(
            signature(
                b"campaignd-test-secret",
                1_767_225_600,
                br#"{"event":"approval.requested"}"#
            ),
            Ok(
                "sha256=8f8ff97d8bd2f7e15538b772c938f1391d897afe71a74de823a2d5ac435ec4df"
                    .to_owned()
            )
        );
    }
}
