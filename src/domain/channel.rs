//! Channel formats and their length limits, with exact counting: CP949 bytes for Korean SMS/LMS,
//! GSM-7 or UCS-2 units and parts for SMS elsewhere, X's weighted length, Google's display width,
//! characters for Meta, email and push, and the push payload's bytes.
//!
//! The numbers come from the `[playbook.limits]` table of `agents/content.toml` ([`ChannelLimits`]);
//! the counting rules are code because they are facts about encodings, not preferences. Counting never
//! guesses: text that cannot be encoded for a channel (an emoji in a CP949 SMS) is a violation with the
//! offending character named, never a miscount. Nothing here rewrites text; shortening is the
//! generator's job.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::domain::campaign::Channel;

/// Why a text could not be counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    #[error(
        "{character:?} (U+{code:04X}) at character {index} cannot be encoded in {encoding}; remove or replace it"
    )]
    Unencodable {
        character: char,
        code: u32,
        /// Position in characters (not bytes), counting from 0.
        index: usize,
        encoding: &'static str,
    },
}

/// Bytes `text` takes in CP949 (Korean SMS/LMS): ASCII 1, Hangul and other double-byte characters 2.
/// Fails on the first character CP949 cannot represent instead of counting a replacement for it.
pub fn cp949_len(text: &str) -> Result<usize, CountError> {
    // encoding_rs's EUC_KR is the WHATWG "euc-kr", which is windows-949 (CP949): it covers all 11 172
    // Hangul syllables, not only the 2 350 of KS X 1001.
    let (bytes, _, had_errors) = encoding_rs::EUC_KR.encode(text);
    if !had_errors {
        return Ok(bytes.len());
    }
    // Locate the culprit so the operator knows what to change.
    let mut buf = [0u8; 4];
    for (index, character) in text.chars().enumerate() {
        let (_, _, bad) = encoding_rs::EUC_KR.encode(character.encode_utf8(&mut buf));
        if bad {
            return Err(CountError::Unencodable {
                character,
                code: u32::from(character),
                index,
                encoding: "CP949",
            });
        }
    }
    // Unreachable in practice: the whole failed, so some character fails alone (CP949 is stateless).
    Err(CountError::Unencodable {
        character: '\u{FFFD}',
        code: 0xFFFD,
        index: 0,
        encoding: "CP949",
    })
}

/// How an SMS outside Korea is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet: 160 units in one message.
    Gsm7,
    /// UTF-16 code units: 70 in one message. One non-GSM character switches the whole message.
    Ucs2,
}

/// The size of an SMS: its encoding, units and how many parts it is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsCount {
    pub encoding: SmsEncoding,
    pub units: usize,
    pub parts: usize,
}

/// GSM 03.38 basic character set (one unit each). Index 0x1B is the escape, not a character.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: escape + character, two units each.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// Units one character costs in GSM-7, or `None` when it is not in the alphabet.
pub fn gsm7_cost(character: char) -> Option<usize> {
    if GSM7_BASIC.contains(character) {
        Some(1)
    } else if GSM7_EXTENSION.contains(character) {
        Some(2)
    } else {
        None
    }
}

/// Counts an SMS: GSM-7 when every character is in the GSM alphabet, otherwise UCS-2 for the whole
/// message. Parts are packed exactly: an escape pair or a surrogate pair is never split across parts.
pub fn sms_count(text: &str, limits: &SmsLimits) -> SmsCount {
    let gsm_costs: Option<Vec<usize>> = text.chars().map(gsm7_cost).collect();
    let (encoding, costs, single, part) = match gsm_costs {
        Some(costs) => (
            SmsEncoding::Gsm7,
            costs,
            limits.gsm7_single,
            limits.gsm7_part,
        ),
        None => {
            let costs = text.chars().map(char::len_utf16).collect();
            (
                SmsEncoding::Ucs2,
                costs,
                limits.ucs2_single,
                limits.ucs2_part,
            )
        }
    };
    let units: usize = costs.iter().sum();
    let parts = if units <= single {
        1
    } else {
        pack_parts(&costs, part)
    };
    SmsCount {
        encoding,
        units,
        parts,
    }
}

/// Parts needed when no character's units may straddle two parts.
fn pack_parts(costs: &[usize], part: usize) -> usize {
    let part = part.max(2);
    let mut parts = 1;
    let mut used = 0;
    for &cost in costs {
        if used + cost > part {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

/// Whether a character is pictographic (an emoji or part of an emoji sequence). Covers the
/// Extended_Pictographic blocks, regional indicators, the variation selector 16 and the zero-width
/// joiner, which only appear inside emoji in ad copy.
pub fn is_emoji(character: char) -> bool {
    matches!(u32::from(character),
        0x1F000..=0x1FAFF        // mahjong … symbols and pictographs extended-A, incl. regional indicators
        | 0x1FC00..=0x1FFFD      // reserved pictographic
        | 0x2600..=0x27BF        // miscellaneous symbols, dingbats
        | 0x2B00..=0x2BFF        // arrows and stars (⭐ ⬆)
        | 0x2300..=0x23FF        // technical (⌚ ⏰)
        | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x203C | 0x2049 | 0x2122 | 0x2139
        | 0xFE0F | 0x200D | 0x20E3)
}

/// The weight X gives one character (twitter-text v3): 1 for Latin and the general punctuation
/// ranges, 2 for everything else (Hangul, CJK, …).
fn x_char_weight(character: char) -> usize {
    match u32::from(character) {
        0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
        _ => 2,
    }
}

/// X's weighted length: every URL (`http://…`, `https://…`, `www.…`) counts `url_weight`, an emoji
/// (a whole emoji sequence) counts 2, and every other character its twitter-text weight.
pub fn x_weighted_len(text: &str, url_weight: usize) -> usize {
    let mut total = 0;
    // split_inclusive keeps the whitespace so every character is counted exactly once.
    for token in text.split_inclusive(char::is_whitespace) {
        let word = token.trim_end_matches(char::is_whitespace);
        let trailing_space = &token[word.len()..];
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("www.")
        {
            // Closing punctuation is not part of the link.
            let url = word.trim_end_matches(['.', ',', '!', '?', ';', ':', ')', '"', '\'']);
            total += url_weight + weigh_graphemes(&word[url.len()..]);
        } else {
            total += weigh_graphemes(word);
        }
        total += weigh_graphemes(trailing_space);
    }
    total
}

fn weigh_graphemes(text: &str) -> usize {
    text.graphemes(true)
        .map(|g| {
            if g.chars().any(is_emoji) {
                2
            } else {
                g.chars().map(x_char_weight).sum()
            }
        })
        .sum()
}

/// Display width as Google Ads counts it: double-width (East Asian wide) characters count 2.
pub fn display_width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Characters as a reader sees them (extended grapheme clusters): an emoji sequence is one.
pub fn char_len(text: &str) -> usize {
    text.graphemes(true).count()
}

/// Bytes of the smallest APNs payload carrying this alert: `{"aps":{"alert":{"title":…,"body":…}}}`.
pub fn push_payload_len(title: Option<&str>, body: &str) -> usize {
    let alert = match title {
        Some(title) => serde_json::json!({ "title": title, "body": body }),
        None => serde_json::json!({ "body": body }),
    };
    serde_json::json!({ "aps": { "alert": alert } })
        .to_string()
        .len()
}

/// A placement a variant is written for. A campaign channel maps to one or more formats
/// ([`Format::for_channel`]); each has its own fields and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Korean SMS, CP949 bytes.
    KrSms,
    /// Korean LMS/MMS, CP949 bytes.
    KrLms,
    /// SMS outside Korea, GSM-7/UCS-2 units.
    Sms,
    /// Google responsive search ad: headline, description (the text) and path.
    GoogleRsa,
    /// Google responsive display ad: headline and description.
    Display,
    /// Meta feed ad: primary text and headline.
    Meta,
    /// An X post.
    X,
    /// Email: subject and body.
    Email,
    /// Mobile push: title (the headline) and body.
    Push,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::KrSms,
        Format::KrLms,
        Format::Sms,
        Format::GoogleRsa,
        Format::Display,
        Format::Meta,
        Format::X,
        Format::Email,
        Format::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::KrSms => "kr_sms",
            Format::KrLms => "kr_lms",
            Format::Sms => "sms",
            Format::GoogleRsa => "google_rsa",
            Format::Display => "display",
            Format::Meta => "meta",
            Format::X => "x",
            Format::Email => "email",
            Format::Push => "push",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The campaign channel this format is bought or sent on.
    pub fn channel(self) -> Channel {
        match self {
            Format::KrSms | Format::KrLms | Format::Sms => Channel::Sms,
            Format::GoogleRsa => Channel::Search,
            Format::Display => Channel::Display,
            Format::Meta | Format::X => Channel::Social,
            Format::Email => Channel::Email,
            Format::Push => Channel::Push,
        }
    }

    /// The formats a variant for `channel` in `region` (ISO 3166) is written for. Korean SMS lists
    /// SMS first: a text over 90 bytes goes out as an LMS.
    pub fn for_channel(channel: Channel, region: &str) -> &'static [Format] {
        match channel {
            Channel::Sms if region.eq_ignore_ascii_case("KR") => &[Format::KrSms, Format::KrLms],
            Channel::Sms => &[Format::Sms],
            Channel::Search => &[Format::GoogleRsa],
            Channel::Display => &[Format::Display],
            Channel::Social => &[Format::Meta, Format::X],
            Channel::Email => &[Format::Email],
            Channel::Push => &[Format::Push],
        }
    }

    /// The fields a creative in this format must have.
    pub fn required_fields(self) -> &'static [Field] {
        match self {
            Format::KrSms
            | Format::KrLms
            | Format::Sms
            | Format::X
            | Format::Meta
            | Format::Push => &[Field::Text],
            Format::GoogleRsa | Format::Display => &[Field::Headline, Field::Text],
            Format::Email => &[Field::Subject, Field::Text],
        }
    }

    /// The fields this format uses at all; others are left empty by the generator.
    pub fn used_fields(self) -> &'static [Field] {
        match self {
            Format::KrSms | Format::KrLms | Format::Sms | Format::X => &[Field::Text],
            Format::GoogleRsa => &[Field::Headline, Field::Text, Field::Path],
            Format::Display | Format::Meta | Format::Push => &[Field::Headline, Field::Text],
            Format::Email => &[Field::Subject, Field::Text],
        }
    }

    /// Whether this format's text is counted in CP949 (and so cannot carry an emoji).
    pub fn is_cp949(self) -> bool {
        matches!(self, Format::KrSms | Format::KrLms)
    }

    /// The formats a variant in this format is written together with, as one content cell:
    /// Korean SMS and LMS are one (a text too long for an SMS goes as an LMS), every other format
    /// is its own. The first is the cell's name.
    pub fn written_with(self) -> &'static [Format] {
        match self {
            Format::KrSms | Format::KrLms => &[Format::KrSms, Format::KrLms],
            Format::Sms => &[Format::Sms],
            Format::GoogleRsa => &[Format::GoogleRsa],
            Format::Display => &[Format::Display],
            Format::Meta => &[Format::Meta],
            Format::X => &[Format::X],
            Format::Email => &[Format::Email],
            Format::Push => &[Format::Push],
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a creative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The message body: SMS text, description, primary text, post, email body, push body.
    Text,
    /// Search/display/Meta headline, push title.
    Headline,
    /// Email subject.
    Subject,
    /// Search display-URL path.
    Path,
    /// The push payload as sent (title and body together).
    Payload,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Text => "text",
            Field::Headline => "headline",
            Field::Subject => "subject",
            Field::Path => "path",
            Field::Payload => "payload",
        }
    }
}

/// The words of one creative, field by field. Fields a format does not use stay `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creative {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Creative {
    pub fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Text => Some(&self.text),
            Field::Headline => self.headline.as_deref(),
            Field::Subject => self.subject.as_deref(),
            Field::Path => self.path.as_deref(),
            Field::Payload => None,
        }
    }

    pub fn get_mut(&mut self, field: Field) -> Option<&mut String> {
        match field {
            Field::Text => Some(&mut self.text),
            Field::Headline => self.headline.as_mut(),
            Field::Subject => self.subject.as_mut(),
            Field::Path => self.path.as_mut(),
            Field::Payload => None,
        }
    }

    /// Every field that is set, with its text.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> {
        [Field::Text, Field::Headline, Field::Subject, Field::Path]
            .into_iter()
            .filter_map(|f| self.get(f).map(|t| (f, t)))
    }
}

/// How a measure was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    Cp949Bytes,
    SmsUnits,
    XWeighted,
    DisplayWidth,
    Characters,
    PayloadBytes,
}

/// One field's measured size against its limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    pub field: Field,
    pub counting: Counting,
    /// Bytes, units, weight, width or characters, as `counting` says.
    pub value: usize,
    /// The hard maximum, or the recommended one when the format only warns.
    pub max: Option<usize>,
    /// SMS only: the encoding and number of parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsCount>,
}

/// A limit a creative breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitFinding {
    pub field: Field,
    pub message: String,
}

/// The result of checking a creative against its format: the measures, the hard limits it breaks
/// (it must not be sent) and the recommendations it misses (it may be sent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fit {
    pub measures: Vec<Measure>,
    pub violations: Vec<LimitFinding>,
    pub warnings: Vec<LimitFinding>,
}

impl Fit {
    pub fn fits(&self) -> bool {
        self.violations.is_empty()
    }

    fn measure(&mut self, field: Field, counting: Counting, value: usize, max: Option<usize>) {
        self.measures.push(Measure {
            field,
            counting,
            value,
            max,
            sms: None,
        });
    }

    fn violation(&mut self, field: Field, message: String) {
        self.violations.push(LimitFinding { field, message });
    }

    fn warning(&mut self, field: Field, message: String) {
        self.warnings.push(LimitFinding { field, message });
    }

    /// Records a hard maximum.
    fn hard(
        &mut self,
        format: Format,
        field: Field,
        counting: Counting,
        value: usize,
        max: usize,
        unit: &str,
    ) {
        self.measure(field, counting, value, Some(max));
        if value > max {
            self.violation(
                field,
                format!(
                    "{format} {} is {value} {unit}, over the limit of {max}",
                    field.as_str()
                ),
            );
        }
    }

    /// Records a recommended maximum: over it is a warning, not a violation.
    fn soft(&mut self, format: Format, field: Field, value: usize, max: usize) {
        self.measure(field, Counting::Characters, value, Some(max));
        if value > max {
            self.warning(
                field,
                format!(
                    "{format} {} is {value} characters, over the recommended {max}",
                    field.as_str()
                ),
            );
        }
    }
}

/// One format a creative was checked against, and how it measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatCheck {
    pub format: Format,
    #[serde(flatten)]
    pub fit: Fit,
}

/// How a creative goes out: the first of its channel's formats it fits (a Korean text too long for
/// an SMS goes as an LMS), with every format checked on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatFit {
    /// `None`: it fits none of them and must not be sent.
    pub sent_as: Option<Format>,
    pub checked: Vec<FormatCheck>,
    /// When it goes out in a later format than the first: why, for a person ("kr_sms text is
    /// 108 bytes, over the limit of 90: sent as kr_lms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FormatFit {
    pub fn fits(&self) -> bool {
        self.sent_as.is_some()
    }

    /// The fit of the format it is sent as, or of the first format checked.
    pub fn fit(&self) -> Option<&Fit> {
        let format = self
            .sent_as
            .or_else(|| self.checked.first().map(|c| c.format))?;
        self.checked
            .iter()
            .find(|c| c.format == format)
            .map(|c| &c.fit)
    }
}

/// Korean SMS or LMS byte limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteLimit {
    pub max_bytes: usize,
}

/// SMS outside Korea: units in one message and per part of a concatenated one, per encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsLimits {
    pub gsm7_single: usize,
    pub gsm7_part: usize,
    pub ucs2_single: usize,
    pub ucs2_part: usize,
    /// How many parts a message may be sent as; 1 means a single SMS.
    pub max_parts: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleRsaLimits {
    pub headline: usize,
    pub description: usize,
    pub path: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayLimits {
    pub headline: usize,
    pub description: usize,
}

/// Meta's are recommendations: over them is a warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaLimits {
    pub primary_text: usize,
    pub headline: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XLimits {
    pub weighted: usize,
    /// What one URL weighs, whatever its length.
    pub url_weight: usize,
}

/// Recommended subject length (warn outside it); `(광고)` counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailLimits {
    pub subject_min: usize,
    pub subject_max: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushLimits {
    /// Hard: the APNs payload size.
    pub payload_bytes: usize,
    /// Recommended: what an iOS banner shows of the body.
    pub banner_chars: usize,
}

/// Every format's limits: `[playbook.limits]` in `agents/content.toml`. `Default` holds the figures
/// of the table in docs/content.md, "Channel limits, counted exactly".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimits {
    pub kr_sms: ByteLimit,
    pub kr_lms: ByteLimit,
    pub sms: SmsLimits,
    pub google_rsa: GoogleRsaLimits,
    pub display: DisplayLimits,
    pub meta: MetaLimits,
    pub x: XLimits,
    pub email: EmailLimits,
    pub push: PushLimits,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            kr_sms: ByteLimit { max_bytes: 90 },
            kr_lms: ByteLimit { max_bytes: 2000 },
            sms: SmsLimits {
                gsm7_single: 160,
                gsm7_part: 153,
                ucs2_single: 70,
                ucs2_part: 67,
                max_parts: 1,
            },
            google_rsa: GoogleRsaLimits {
                headline: 30,
                description: 90,
                path: 15,
            },
            display: DisplayLimits {
                headline: 30,
                description: 90,
            },
            meta: MetaLimits {
                primary_text: 125,
                headline: 40,
            },
            x: XLimits {
                weighted: 280,
                url_weight: 23,
            },
            email: EmailLimits {
                subject_min: 30,
                subject_max: 60,
            },
            push: PushLimits {
                payload_bytes: 4096,
                banner_chars: 80,
            },
        }
    }
}

impl ChannelLimits {
    /// Values that would make every creative fail or make counting meaningless, as
    /// `(key under [playbook.limits], reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut positive = |key: &str, value: usize| {
            if value == 0 {
                problems.push((key.to_owned(), "must be greater than 0".to_owned()));
            }
        };
        positive("kr_sms.max_bytes", self.kr_sms.max_bytes);
        positive("kr_lms.max_bytes", self.kr_lms.max_bytes);
        positive("sms.gsm7_single", self.sms.gsm7_single);
        positive("sms.gsm7_part", self.sms.gsm7_part);
        positive("sms.ucs2_single", self.sms.ucs2_single);
        positive("sms.ucs2_part", self.sms.ucs2_part);
        positive("sms.max_parts", self.sms.max_parts);
        positive("google_rsa.headline", self.google_rsa.headline);
        positive("google_rsa.description", self.google_rsa.description);
        positive("google_rsa.path", self.google_rsa.path);
        positive("display.headline", self.display.headline);
        positive("display.description", self.display.description);
        positive("x.weighted", self.x.weighted);
        positive("push.payload_bytes", self.push.payload_bytes);
        if self.email.subject_min > self.email.subject_max {
            problems.push((
                "email.subject_min".to_owned(),
                format!(
                    "{} is above email.subject_max {}",
                    self.email.subject_min, self.email.subject_max
                ),
            ));
        }
        if self.kr_sms.max_bytes > self.kr_lms.max_bytes {
            problems.push((
                "kr_sms.max_bytes".to_owned(),
                "is above kr_lms.max_bytes".to_owned(),
            ));
        }
        problems
    }

    /// The first of `formats` (in order) `creative` fits; each is checked until one fits.
    pub fn first_fit(&self, formats: &[Format], creative: &Creative) -> FormatFit {
        let mut checked: Vec<FormatCheck> = Vec::with_capacity(formats.len());
        for &format in formats {
            let fit = self.check(format, creative);
            let fits = fit.fits();
            checked.push(FormatCheck { format, fit });
            if fits {
                let note = (checked.len() > 1).then(|| {
                    let why: Vec<&str> = checked
                        .iter()
                        .flat_map(|c| c.fit.violations.iter().map(|v| v.message.as_str()))
                        .collect();
                    format!("{}: sent as {format}", why.join("; "))
                });
                return FormatFit {
                    sent_as: Some(format),
                    checked,
                    note,
                };
            }
        }
        FormatFit {
            sent_as: None,
            checked,
            note: None,
        }
    }

    /// Measures every field `format` uses and compares it with the limits. Missing required fields
    /// and text the format cannot encode are violations.
    pub fn check(&self, format: Format, creative: &Creative) -> Fit {
        let mut fit = Fit::default();
        for &field in format.required_fields() {
            if creative.get(field).is_none_or(|t| t.trim().is_empty()) {
                fit.violation(field, format!("{format} needs a {}", field.as_str()));
            }
        }
        let text = creative.text.as_str();
        match format {
            Format::KrSms | Format::KrLms => {
                let max = if format == Format::KrSms {
                    self.kr_sms.max_bytes
                } else {
                    self.kr_lms.max_bytes
                };
                match cp949_len(text) {
                    Ok(bytes) => fit.hard(
                        format,
                        Field::Text,
                        Counting::Cp949Bytes,
                        bytes,
                        max,
                        "bytes (CP949)",
                    ),
                    Err(err) => fit.violation(Field::Text, format!("{format} text: {err}")),
                }
            }
            Format::Sms => {
                let count = sms_count(text, &self.sms);
                let max = match count.encoding {
                    SmsEncoding::Gsm7 if self.sms.max_parts <= 1 => self.sms.gsm7_single,
                    SmsEncoding::Gsm7 => self.sms.gsm7_part * self.sms.max_parts,
                    SmsEncoding::Ucs2 if self.sms.max_parts <= 1 => self.sms.ucs2_single,
                    SmsEncoding::Ucs2 => self.sms.ucs2_part * self.sms.max_parts,
                };
                fit.measures.push(Measure {
                    field: Field::Text,
                    counting: Counting::SmsUnits,
                    value: count.units,
                    max: Some(max),
                    sms: Some(count),
                });
                if count.parts > self.sms.max_parts {
                    fit.violation(
                        Field::Text,
                        format!(
                            "sms text is {} {:?} units in {} parts, over the limit of {} part(s)",
                            count.units, count.encoding, count.parts, self.sms.max_parts
                        ),
                    );
                }
            }
            Format::GoogleRsa => {
                let limits = &self.google_rsa;
                for (field, max) in [
                    (Field::Headline, limits.headline),
                    (Field::Text, limits.description),
                    (Field::Path, limits.path),
                ] {
                    if let Some(value) = creative.get(field) {
                        fit.hard(
                            format,
                            field,
                            Counting::DisplayWidth,
                            display_width(value),
                            max,
                            "wide",
                        );
                    }
                }
            }
            Format::Display => {
                for (field, max) in [
                    (Field::Headline, self.display.headline),
                    (Field::Text, self.display.description),
                ] {
                    if let Some(value) = creative.get(field) {
                        fit.hard(
                            format,
                            field,
                            Counting::DisplayWidth,
                            display_width(value),
                            max,
                            "wide",
                        );
                    }
                }
            }
            Format::Meta => {
                fit.soft(format, Field::Text, char_len(text), self.meta.primary_text);
                if let Some(headline) = &creative.headline {
                    fit.soft(
                        format,
                        Field::Headline,
                        char_len(headline),
                        self.meta.headline,
                    );
                }
            }
            Format::X => {
                let weight = x_weighted_len(text, self.x.url_weight);
                fit.hard(
                    format,
                    Field::Text,
                    Counting::XWeighted,
                    weight,
                    self.x.weighted,
                    "weighted characters",
                );
            }
            Format::Email => {
                if let Some(subject) = &creative.subject {
                    let len = char_len(subject);
                    fit.measure(
                        Field::Subject,
                        Counting::Characters,
                        len,
                        Some(self.email.subject_max),
                    );
                    if len < self.email.subject_min || len > self.email.subject_max {
                        fit.warning(
                            Field::Subject,
                            format!(
                                "email subject is {len} characters, outside the recommended {}–{}",
                                self.email.subject_min, self.email.subject_max
                            ),
                        );
                    }
                }
            }
            Format::Push => {
                let payload = push_payload_len(creative.headline.as_deref(), text);
                fit.hard(
                    format,
                    Field::Payload,
                    Counting::PayloadBytes,
                    payload,
                    self.push.payload_bytes,
                    "bytes",
                );
                fit.soft(format, Field::Text, char_len(text), self.push.banner_chars);
            }
        }
        fit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp949_counts_the_domain_example() {
        assert_eq!(
            cp949_len("(광고)ABC마트 봄세일 최대30% 할인! 무료거부 0801234567"),
            Ok(54)
        );
        assert_eq!(cp949_len(&"가".repeat(46)), Ok(92));
        assert_eq!(cp949_len("똠"), Ok(2));
    }

    #[test]
    fn cp949_rejects_emoji_and_names_it() {
        let err = cp949_len("세일 😀").unwrap_err();
        assert_eq!(
            err,
            CountError::Unencodable {
                character: '😀',
                code: 0x1F600,
                index: 3,
                encoding: "CP949"
            }
        );
        assert!(err.to_string().contains("U+1F600"));
    }

    #[test]
    fn gsm_extension_costs_two_and_non_gsm_switches_to_ucs2() {
        let limits = ChannelLimits::default().sms;
        assert_eq!(
            sms_count("a[b]€", &limits),
            SmsCount {
                encoding: SmsEncoding::Gsm7,
                units: 8,
                parts: 1
            }
        );
        assert_eq!(
            sms_count("Hi 😀", &limits),
            SmsCount {
                encoding: SmsEncoding::Ucs2,
                units: 5,
                parts: 1
            }
        );
        assert_eq!(sms_count(&"a".repeat(161), &limits).parts, 2);
        assert_eq!(sms_count(&"a".repeat(160), &limits).parts, 1);
        assert_eq!(sms_count(&"é".repeat(306), &limits).parts, 2);
        assert_eq!(sms_count(&"ç".repeat(71), &limits).parts, 2);
    }

    #[test]
    fn escape_pairs_are_not_split_across_parts() {
        let limits = ChannelLimits::default().sms;
        // 152 units then a 2-unit `€`: it cannot start in the last unit of part one.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(
            sms_count(&text, &limits),
            SmsCount {
                encoding: SmsEncoding::Gsm7,
                units: 164,
                parts: 2
            }
        );
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(sms_count(&text, &limits).parts, 3);
    }

    #[test]
    fn x_weighs_hangul_emoji_and_urls() {
        assert_eq!(x_weighted_len(&"가".repeat(140), 23), 280);
        assert_eq!(x_weighted_len("Hi 😀", 23), 5);
        assert_eq!(x_weighted_len("👨‍👩‍👧", 23), 2);
        assert_eq!(
            x_weighted_len("see https://example.com/a/very/long/path/indeed.", 23),
            4 + 23 + 1
        );
        assert_eq!(x_weighted_len("www.example.com", 23), 23);
    }

    #[test]
    fn google_counts_double_width_as_two() {
        assert_eq!(display_width("봄세일 30%"), 10);
        let creative = Creative {
            text: "설명".into(),
            headline: Some("가".repeat(16)),
            path: Some("spring".into()),
            ..Creative::default()
        };
        let fit = ChannelLimits::default().check(Format::GoogleRsa, &creative);
        assert!(!fit.fits());
        assert_eq!(fit.violations[0].field, Field::Headline);
    }

    #[test]
    fn meta_and_email_warn_without_blocking() {
        let limits = ChannelLimits::default();
        let long = Creative {
            text: "x".repeat(200),
            headline: Some("y".repeat(41)),
            ..Creative::default()
        };
        let fit = limits.check(Format::Meta, &long);
        assert!(fit.fits());
        assert_eq!(fit.warnings.len(), 2);
        let email = Creative {
            text: "body".into(),
            subject: Some("(광고)짧은 제목".into()),
            ..Creative::default()
        };
        let fit = limits.check(Format::Email, &email);
        assert!(fit.fits());
        assert_eq!(fit.measures[0].value, 9);
        assert_eq!(fit.warnings.len(), 1);
    }

    #[test]
    fn push_payload_is_measured_in_bytes() {
        let limits = ChannelLimits::default();
        assert_eq!(
            push_payload_len(None, "hi"),
            r#"{"aps":{"alert":{"body":"hi"}}}"#.len()
        );
        let fit = limits.check(
            Format::Push,
            &Creative {
                text: "가".repeat(1400),
                ..Creative::default()
            },
        );
        assert!(!fit.fits(), "4 200 bytes of body exceed 4 096");
    }

    #[test]
    fn kr_sms_over_90_bytes_does_not_fit_but_lms_does() {
        let limits = ChannelLimits::default();
        let creative = Creative {
            text: "가".repeat(46),
            ..Creative::default()
        };
        assert!(!limits.check(Format::KrSms, &creative).fits());
        let lms = limits.check(Format::KrLms, &creative);
        assert!(lms.fits());
        assert_eq!(lms.measures[0].value, 92);
    }
}
