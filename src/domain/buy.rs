//! A buy: money put on one channel × segment × variant for one day.
//!
//! The optimizer decides buys, the campaign loop places them with the market, the board and the
//! API show them; the type lives in the domain so that none of them owns it.

use serde::{Deserialize, Serialize};

use super::campaign::Channel;

/// Money put on one channel × segment × variant for one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Buy {
    pub channel: Channel,
    pub segment: String,
    pub variant: String,
    pub spend: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buy_reads_and_writes_the_same_json_as_before() {
        let json = r#"{"channel":"sms","segment":"students","variant":"v1","spend":12.5}"#;
        let buy: Buy = serde_json::from_str(json).unwrap();
        assert_eq!(
            buy,
            Buy {
                channel: Channel::Sms,
                segment: "students".to_owned(),
                variant: "v1".to_owned(),
                spend: 12.5,
            }
        );
        assert_eq!(serde_json::to_string(&buy).unwrap(), json);
    }
}
