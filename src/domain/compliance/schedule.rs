//! The time-of-day rules: KR-NIGHT (Korea time, night consent) and US-TCPA-QUIET (the recipient's
//! local time), and the next moment a message may go out.
//!
//! The send time is an argument; nothing here reads a clock. Rescheduled times keep the offset the
//! send time was given in, so an operator reads them in their own time.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone as _};
use chrono_tz::Tz;

use super::consent::ConsentRecord;
use super::fix::Fix;
use super::message::MessageChannel;
use super::playbook::{NightRule, TcpaQuietRule};
use super::rules::{KR_NIGHT, US_TCPA_QUIET};
use super::verdict::{Field, Finding};

/// Whether `t` lies in the window `[start, end)`, which may wrap past midnight (21:00–08:00).
pub fn in_window(t: NaiveTime, start: NaiveTime, end: NaiveTime) -> bool {
    if start <= end {
        start <= t && t < end
    } else {
        t >= start || t < end
    }
}

/// The first moment at or after `after` whose local time in `tz` is `at`, in `after`'s offset.
/// A local time that a daylight-saving jump skips is taken an hour later.
pub fn next_local_time(
    after: DateTime<FixedOffset>,
    tz: Tz,
    at: NaiveTime,
) -> Option<DateTime<FixedOffset>> {
    let local = after.with_timezone(&tz);
    let mut date = local.date_naive();
    // Two days always suffice; the bound only keeps the loop obviously finite.
    for _ in 0..3 {
        let naive = date.and_time(at);
        let resolved = tz.from_local_datetime(&naive).earliest().or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        });
        if let Some(candidate) = resolved.filter(|c| *c >= local) {
            return Some(candidate.with_timezone(after.offset()));
        }
        date = date.succ_opt()?;
    }
    None
}

/// KR-NIGHT: advertising inside the quiet window in Korea needs a separate prior night consent.
pub fn check_night(
    channel: MessageChannel,
    send_at: DateTime<FixedOffset>,
    consent: Option<&ConsentRecord>,
    rule: &NightRule,
) -> Option<Finding> {
    if rule.email_exempt && channel == MessageChannel::Email {
        return None;
    }
    let tz = rule.timezone.0;
    let local = send_at.with_timezone(&tz);
    let (start, end) = (rule.quiet_start.0, rule.quiet_end.0);
    if !in_window(local.time(), start, end) {
        return None;
    }
    let at = send_at.with_timezone(&chrono::Utc);
    if consent.is_some_and(|c| c.night_consent && !c.is_withdrawn(at)) {
        return None;
    }
    let fix = next_local_time(send_at, tz, end).map(|to| Fix::Reschedule { to });
    Some(Finding {
        rule_id: KR_NIGHT.to_owned(),
        severity: rule.severity,
        field: Field::SendTime,
        span: None,
        message: format!(
            "{} is {} in {}, inside the night window {}–{}; advertising then needs a separate \
             prior night consent, or send at {}",
            send_at.to_rfc3339(),
            local.format("%H:%M"),
            tz.name(),
            start.format("%H:%M"),
            end.format("%H:%M"),
            end.format("%H:%M"),
        ),
        fix,
    })
}

/// US-TCPA-QUIET: telemarketing only between the allowed hours in the recipient's local time.
pub fn check_tcpa(
    send_at: DateTime<FixedOffset>,
    recipient_tz: Option<Tz>,
    rule: &TcpaQuietRule,
) -> Option<Finding> {
    let Some(tz) = recipient_tz else {
        return Some(Finding {
            rule_id: US_TCPA_QUIET.to_owned(),
            severity: rule.severity,
            field: Field::Recipient,
            span: None,
            message: "the recipient's time zone is unknown; quiet hours are in the recipient's \
                      local time, so give it (for example America/New_York)"
                .to_owned(),
            fix: None,
        });
    };
    let local = send_at.with_timezone(&tz);
    let (start, end) = (rule.allowed_start.0, rule.allowed_end.0);
    if in_window(local.time(), start, end) {
        return None;
    }
    let fix = next_local_time(send_at, tz, start).map(|to| Fix::Reschedule { to });
    Some(Finding {
        rule_id: US_TCPA_QUIET.to_owned(),
        severity: rule.severity,
        field: Field::SendTime,
        span: None,
        message: format!(
            "{} is {} for the recipient ({}); telemarketing is allowed only {}–{} local time",
            send_at.to_rfc3339(),
            local.format("%H:%M"),
            tz.name(),
            start.format("%H:%M"),
            end.format("%H:%M"),
        ),
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    #[test]
    fn windows_wrap_past_midnight() {
        assert!(in_window(t(22, 30), t(21, 0), t(8, 0)));
        assert!(in_window(t(3, 0), t(21, 0), t(8, 0)));
        assert!(!in_window(t(8, 0), t(21, 0), t(8, 0)));
        assert!(in_window(t(21, 0), t(21, 0), t(8, 0)));
        assert!(in_window(t(8, 0), t(8, 0), t(21, 0)));
        assert!(!in_window(t(21, 0), t(8, 0), t(21, 0)));
    }

    #[test]
    fn next_morning_in_seoul_keeps_the_given_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T13:30:00Z").ok();
        let next = at.and_then(|a| next_local_time(a, chrono_tz::Asia::Seoul, t(8, 0)));
        assert_eq!(
            next.map(|n| n.to_rfc3339()),
            Some("2026-11-23T23:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn a_skipped_local_time_is_taken_an_hour_later() {
        // 02:30 does not exist in New York on 2026-03-08.
        let at = DateTime::parse_from_rfc3339("2026-03-08T05:00:00Z").ok();
        let next = at.and_then(|a| next_local_time(a, chrono_tz::America::New_York, t(2, 30)));
        assert_eq!(
            next.map(|n| n.to_rfc3339()),
            Some("2026-03-08T07:30:00+00:00".to_owned())
        );
    }
}
