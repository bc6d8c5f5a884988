//! The ad platforms' bulk-upload formats and their rules, checked before a file is written: a
//! file the platform would refuse, or read differently (micros for units), is never handed over.
//!
//! - Google Ads Editor CSV (search): English column headers; amounts in currency units (the
//!   Google Ads API's micros are a million times larger, and a value that size is refused as a
//!   likely mix-up); responsive search ads with 3–15 headlines of at most 30 display columns
//!   (double-width characters count 2), 2–4 descriptions of at most 90 and paths of at most 15.
//! - A send list (SMS, email, push): one row per creative and audience segment with its spend.
//! - JSON Lines (social): one order per line, as the outbox keeps it.

use super::campaign::Channel;
use super::channel::display_width;
use super::money::minor_digits;
use super::order::{Order, OrderBody};

/// The columns of the Google Ads Editor CSV campaignd writes, in order.
pub const EDITOR_COLUMNS: [&str; 30] = [
    "Campaign",
    "Budget",
    "Budget type",
    "Ad group",
    "Ad type",
    "Headline 1",
    "Headline 2",
    "Headline 3",
    "Headline 4",
    "Headline 5",
    "Headline 6",
    "Headline 7",
    "Headline 8",
    "Headline 9",
    "Headline 10",
    "Headline 11",
    "Headline 12",
    "Headline 13",
    "Headline 14",
    "Headline 15",
    "Description 1",
    "Description 2",
    "Description 3",
    "Description 4",
    "Final URL",
    "Path 1",
    "Path 2",
    "Labels",
    "Campaign status",
    "Ad status",
];

pub const HEADLINES: std::ops::RangeInclusive<usize> = 3..=15;
pub const DESCRIPTIONS: std::ops::RangeInclusive<usize> = 2..=4;
pub const HEADLINE_WIDTH: usize = 30;
pub const DESCRIPTION_WIDTH: usize = 90;
pub const PATH_WIDTH: usize = 15;
/// An amount this large in currency units is taken for micros written by mistake.
pub const MAX_UNITS: f64 = 1e9;

/// An amount as Ads Editor reads it: currency units with the currency's minor digits.
pub fn editor_amount(amount: f64, currency: &str) -> Result<String, String> {
    if !amount.is_finite() || amount < 0.0 {
        return Err(format!("the amount {amount} is not a sum of money"));
    }
    if amount >= MAX_UNITS {
        return Err(format!(
            "the amount {amount} {currency} looks like micros (the Google Ads API's unit); Ads Editor takes currency units"
        ));
    }
    Ok(format!("{amount:.*}", minor_digits(currency)))
}

fn row(cells: &[(&str, String)]) -> Vec<String> {
    EDITOR_COLUMNS
        .iter()
        .map(|column| {
            cells
                .iter()
                .find(|(c, _)| c == column)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// The Ads Editor rows of one search order (without the header), or every rule it breaks.
/// A campaign's name in Ads Editor is its id; an ad group is a segment.
pub fn editor_rows(order: &Order) -> Result<Vec<Vec<String>>, Vec<String>> {
    if order.channel != Channel::Search {
        return Err(vec![format!(
            "Ads Editor CSV is for search, not {}",
            order.channel
        )]);
    }
    let campaign = order.campaign.to_string();
    let label = format!("campaignd {}", order.key);
    match &order.body {
        OrderBody::Budget { daily } => {
            let budget = editor_amount(*daily, &order.currency).map_err(|e| vec![e])?;
            Ok(vec![row(&[
                ("Campaign", campaign),
                ("Budget", budget),
                ("Budget type", "Daily".to_owned()),
                ("Labels", label),
                ("Campaign status", "Enabled".to_owned()),
            ])])
        }
        OrderBody::Creatives {
            segment,
            creatives,
            landing_url,
        } => {
            let mut headlines: Vec<String> = Vec::new();
            let mut descriptions: Vec<String> = Vec::new();
            let mut path = None;
            for creative in creatives {
                if let Some(h) = &creative.headline
                    && !headlines.contains(h)
                {
                    headlines.push(h.clone());
                }
                if !descriptions.contains(&creative.message.text) {
                    descriptions.push(creative.message.text.clone());
                }
                path = path.or(creative.path.clone());
            }
            // The platform shows at most this many; the rest are not lost, only not in this ad.
            headlines.truncate(*HEADLINES.end());
            descriptions.truncate(*DESCRIPTIONS.end());
            let problems = rsa_problems(&headlines, &descriptions, path.as_deref(), landing_url);
            if !problems.is_empty() {
                return Err(problems
                    .into_iter()
                    .map(|p| format!("ad group {segment}: {p}"))
                    .collect());
            }
            let mut cells = vec![
                ("Campaign", campaign),
                ("Ad group", segment.clone()),
                ("Ad type", "Responsive search ad".to_owned()),
                ("Final URL", landing_url.clone().unwrap_or_default()),
                ("Path 1", path.unwrap_or_default()),
                ("Labels", label),
                ("Ad status", "Enabled".to_owned()),
            ];
            for (i, h) in headlines.into_iter().enumerate() {
                cells.push((EDITOR_COLUMNS[5 + i], h));
            }
            for (i, d) in descriptions.into_iter().enumerate() {
                cells.push((EDITOR_COLUMNS[20 + i], d));
            }
            Ok(vec![row(&cells)])
        }
        // A day's buys are the budget's to pace on Google: the platform takes no per-ad spend.
        OrderBody::Buys { .. } => Ok(Vec::new()),
    }
}

/// Every rule a responsive search ad's assets break.
pub fn rsa_problems(
    headlines: &[String],
    descriptions: &[String],
    path: Option<&str>,
    final_url: &Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !HEADLINES.contains(&headlines.len()) {
        problems.push(format!(
            "a responsive search ad needs 3 to 15 distinct headlines; the approved creatives give {} (add headline templates to the content playbook or messages to the brief)",
            headlines.len()
        ));
    }
    if !DESCRIPTIONS.contains(&descriptions.len()) {
        problems.push(format!(
            "a responsive search ad needs 2 to 4 distinct descriptions; the approved creatives give {}",
            descriptions.len()
        ));
    }
    for (what, texts, limit) in [
        ("headline", headlines, HEADLINE_WIDTH),
        ("description", descriptions, DESCRIPTION_WIDTH),
    ] {
        for text in texts {
            let width = display_width(text);
            if width > limit {
                problems.push(format!(
                    "the {what} `{text}` is {width} columns wide; at most {limit}"
                ));
            }
        }
    }
    if let Some(path) = path
        && display_width(path) > PATH_WIDTH
    {
        problems.push(format!("the path `{path}` is over {PATH_WIDTH} columns"));
    }
    match final_url.as_deref() {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
        _ => problems
            .push("a responsive search ad needs a final URL (the brief's landing_url)".to_owned()),
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compliance::{Message, MessageChannel};
    use crate::domain::order::Creative;

    fn search(body: OrderBody) -> Order {
        Order {
            key: "ord_1".to_owned(),
            tenant: "acme".into(),
            campaign: "spring".into(),
            step: "s".to_owned(),
            channel: Channel::Search,
            day: 0,
            currency: "KRW".to_owned(),
            body,
            created_at: "2026-09-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn creative(headline: &str, text: &str) -> Creative {
        Creative {
            variant: headline.to_owned(),
            headline: Some(headline.to_owned()),
            path: Some("shop".to_owned()),
            message: Message::advert(MessageChannel::Search, text),
        }
    }

    #[test]
    fn amounts_are_units_with_the_currencys_digits_and_micros_are_refused() {
        assert_eq!(editor_amount(50_000.0, "KRW").unwrap(), "50000");
        assert_eq!(editor_amount(12.5, "USD").unwrap(), "12.50");
        assert!(
            editor_amount(50_000_000_000.0, "KRW")
                .unwrap_err()
                .contains("micros")
        );
        assert!(editor_amount(f64::NAN, "USD").is_err());
        assert!(editor_amount(-1.0, "USD").is_err());
    }

    #[test]
    fn a_budget_is_one_row_under_the_editor_columns() {
        let rows = editor_rows(&search(OrderBody::Budget { daily: 30_000.0 })).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), EDITOR_COLUMNS.len());
        assert_eq!(rows[0][1], "30000");
        assert_eq!(rows[0][2], "Daily");
    }

    #[test]
    fn a_responsive_search_ad_is_checked_before_it_is_written() {
        let url = Some("https://example.com".to_owned());
        let ok = OrderBody::Creatives {
            segment: "students".to_owned(),
            landing_url: url.clone(),
            creatives: vec![
                creative("봄 세일", "ABC마트 봄 세일: 전 품목 할인. 지금 확인하세요"),
                creative("Spring sale", "Everything for spring. Shop now"),
                creative("New arrivals", "Everything for spring. Shop now"),
            ],
        };
        let rows = editor_rows(&search(ok)).unwrap();
        assert_eq!(rows[0][3], "students");
        assert_eq!(rows[0][5], "봄 세일");
        assert_eq!(rows[0][21], "Everything for spring. Shop now");
        assert_eq!(rows[0][22], "", "duplicate descriptions are written once");
        let too_few = OrderBody::Creatives {
            segment: "students".to_owned(),
            landing_url: None,
            creatives: vec![creative(&"가".repeat(16), "x")],
        };
        let problems = editor_rows(&search(too_few)).unwrap_err();
        for expected in ["3 to 15", "2 to 4", "32 columns", "final URL"] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
