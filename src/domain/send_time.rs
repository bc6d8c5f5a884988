//! When a campaign's day sends: at 10:00 in the recipients' time zone (from the campaign's first
//! region), or 10:00 UTC when that zone is unknown. Ten in the morning is inside every send window
//! campaignd knows, so a first review is never blocked for its hour.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};

use super::campaign::CampaignGoal;
use super::compliance::recipient_tz;

/// The start of day `day` of a campaign; `None` before it has a start.
pub fn day_start(goal: &CampaignGoal, day: u32) -> Option<DateTime<Utc>> {
    goal.start.map(|s| s + Duration::days(i64::from(day)))
}

/// The send time of the campaign day starting at `day_start`: 10:00 on the recipients' local date
/// of that instant. A local 10:00 that does not exist (a clock change) falls back to `day_start`.
pub fn send_time(regions: &[String], day_start: DateTime<Utc>) -> DateTime<FixedOffset> {
    let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default();
    match recipient_tz(regions) {
        Some(tz) => {
            let local_date = day_start.with_timezone(&tz).date_naive();
            tz.from_local_datetime(&local_date.and_time(ten))
                .earliest()
                .map(|t| t.fixed_offset())
                .unwrap_or_else(|| day_start.fixed_offset())
        }
        None => day_start
            .date_naive()
            .and_time(ten)
            .and_utc()
            .fixed_offset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::test_goal;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn regions(first: &str) -> Vec<String> {
        vec![first.to_owned()]
    }

    #[test]
    fn ten_in_the_morning_on_the_recipients_local_date() {
        // 2026-12-01T20:00Z is already 12-02 05:00 in Seoul: the send is 12-02 10:00 +09:00.
        let seoul = send_time(&regions("KR"), at("2026-12-01T20:00:00Z"));
        assert_eq!(seoul.to_rfc3339(), "2026-12-02T10:00:00+09:00");
        // New York in winter (-05:00) and in summer (-04:00).
        let winter = send_time(&regions("US"), at("2026-12-01T12:00:00Z"));
        assert_eq!(winter.to_rfc3339(), "2026-12-01T10:00:00-05:00");
        let summer = send_time(&regions("US"), at("2026-07-01T03:00:00Z"));
        assert_eq!(summer.to_rfc3339(), "2026-06-30T10:00:00-04:00");
    }

    #[test]
    fn an_unknown_region_sends_at_ten_utc() {
        let t = send_time(&regions("BR"), at("2026-12-01T23:30:00Z"));
        assert_eq!(t.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        assert_eq!(
            send_time(&[], at("2026-12-01T00:00:00Z")).to_rfc3339(),
            "2026-12-01T10:00:00+00:00"
        );
    }

    #[test]
    fn days_count_from_the_start() {
        let mut goal = test_goal(&["sms"]);
        assert_eq!(day_start(&goal, 3), None);
        goal.start = Some(at("2026-12-01T00:00:00Z"));
        assert_eq!(day_start(&goal, 0), goal.start);
        assert_eq!(day_start(&goal, 3), Some(at("2026-12-04T00:00:00Z")));
    }
}
