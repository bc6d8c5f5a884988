//! From a campaign's regions (ISO 3166 country codes) to the law that applies and the recipients'
//! time zone.
//!
//! Korea and the United States have their own rule sets; any member state of the European Union
//! brings the EU's. Any other region has no rule set: nothing could check a message sent there, so
//! `campaignd check` refuses it and a review for it blocks ([`without_rule_set`]). The time zone
//! is that of the first region, for send-window rules and the send time; a region campaignd does
//! not know has none (the rules then read the send time as given).

use std::collections::BTreeSet;

use chrono_tz::Tz;

use super::message::Jurisdiction;

/// The member states of the European Union.
const EU: [&str; 27] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// The jurisdiction whose rule set covers `region`, if any.
pub fn jurisdiction_of(region: &str) -> Option<Jurisdiction> {
    let region = region.trim().to_ascii_uppercase();
    if let Ok(j) = region.parse::<Jurisdiction>() {
        Some(j)
    } else if EU.contains(&region.as_str()) {
        Some(Jurisdiction::Eu)
    } else {
        None
    }
}

/// The jurisdictions whose rules apply to a campaign's regions, each once, in KR, US, EU order.
pub fn jurisdictions(regions: &[String]) -> Vec<Jurisdiction> {
    let out: BTreeSet<Jurisdiction> = regions.iter().filter_map(|r| jurisdiction_of(r)).collect();
    out.into_iter().collect()
}

/// The regions, as written, that no rule set covers (`JP`, `XX`), in their order.
pub fn without_rule_set(regions: &[String]) -> Vec<&str> {
    regions
        .iter()
        .filter(|r| jurisdiction_of(r).is_none())
        .map(String::as_str)
        .collect()
}

/// The recipients' time zone for a campaign's first region, for send-window rules.
pub fn recipient_tz(regions: &[String]) -> Option<Tz> {
    let name = match regions.first()?.to_ascii_uppercase().as_str() {
        "KR" => "Asia/Seoul",
        "US" => "America/New_York",
        "JP" => "Asia/Tokyo",
        "GB" => "Europe/London",
        "DE" => "Europe/Berlin",
        "FR" => "Europe/Paris",
        _ => return None,
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn member_states_bring_the_eu_and_each_jurisdiction_comes_once() {
        assert_eq!(
            jurisdictions(&regions(&["de", " FR ", "KR", "us", "kr"])),
            vec![Jurisdiction::Kr, Jurisdiction::Us, Jurisdiction::Eu]
        );
        assert_eq!(jurisdictions(&regions(&["EU"])), vec![Jurisdiction::Eu]);
        assert_eq!(
            jurisdictions(&regions(&["JP", "GB", "CH"])),
            Vec::new(),
            "no rule set"
        );
        assert_eq!(jurisdictions(&[]), Vec::new());
    }

    #[test]
    fn regions_without_a_rule_set_are_named_in_their_order() {
        assert_eq!(
            without_rule_set(&regions(&["KR", "JP", "de", "XX"])),
            vec!["JP", "XX"]
        );
        assert!(without_rule_set(&regions(&["KR", "US", "EU", "FR"])).is_empty());
        assert_eq!(jurisdiction_of(" se "), Some(Jurisdiction::Eu));
        assert_eq!(jurisdiction_of("GB"), None, "not a member state");
    }

    #[test]
    fn the_first_region_decides_the_time_zone() {
        assert_eq!(recipient_tz(&regions(&["kr", "US"])), Some(Tz::Asia__Seoul));
        assert_eq!(recipient_tz(&regions(&["US"])), Some(Tz::America__New_York));
        assert_eq!(recipient_tz(&regions(&["DE"])), Some(Tz::Europe__Berlin));
        assert_eq!(
            recipient_tz(&regions(&["BR", "KR"])),
            None,
            "only the first counts"
        );
        // Unlike the jurisdictions, the time zone does not trim its region.
        assert_eq!(recipient_tz(&regions(&[" KR"])), None);
        assert_eq!(recipient_tz(&[]), None);
    }
}
