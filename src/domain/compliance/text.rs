//! Text matching the rules share: word search with sensible boundaries, phone numbers, and the
//! recognition of an advertising label at the start of a message.
//!
//! Every position is a byte offset on a char boundary, so callers can slice with `get` and never
//! panic. Matching is ASCII-case-insensitive and never changes the length of the text (full
//! Unicode lowercasing could, which would shift every span after it).

/// Byte ranges `[start, end)` where `needle` occurs in `hay` as a word.
///
/// Boundaries: a needle that begins with an ASCII letter or digit must not follow one, and a needle
/// that ends with one must not be followed by one (`No.1` is not found in `No.10`, `cure` not in
/// `secure`). A hashtag (`#ad`) must end where the tag ends (`#ad` is not found in `#adventure`).
/// Hangul needles have no boundary, because Korean attaches particles to words (`최고의`).
pub fn find_words(hay: &str, needle: &str) -> Vec<(usize, usize)> {
    let n = needle.len();
    if n == 0 {
        return Vec::new();
    }
    let first = needle.chars().next();
    let last = needle.chars().next_back();
    let is_tag = first == Some('#');
    let mut found = Vec::new();
    for (start, _) in hay.char_indices() {
        let end = start + n;
        let Some(candidate) = hay.get(start..end) else {
            continue;
        };
        if !candidate.eq_ignore_ascii_case(needle) {
            continue;
        }
        let before = hay.get(..start).and_then(|s| s.chars().next_back());
        let after = hay.get(end..).and_then(|s| s.chars().next());
        let ascii_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if ascii_word(first) && ascii_word(before) {
            continue;
        }
        if is_tag {
            if after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
        } else if ascii_word(last) && ascii_word(after) {
            continue;
        }
        found.push((start, end));
    }
    found
}

/// Byte ranges where `needle` occurs in `hay`, ignoring ASCII case, with no word boundaries.
pub fn occurrences(hay: &str, needle: &str) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    hay.char_indices()
        .filter(|&(i, _)| {
            hay.get(i..)
                .is_some_and(|rest| starts_with_ci(rest, needle))
        })
        .map(|(i, _)| (i, i + needle.len()))
        .collect()
}

/// Whether `hay` begins with `needle`, ignoring ASCII case.
pub fn starts_with_ci(hay: &str, needle: &str) -> bool {
    hay.get(..needle.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(needle))
}

/// Whether `hay` contains `needle` anywhere, ignoring ASCII case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    !occurrences(hay, needle).is_empty()
}

/// The digits of `s`, for comparing phone numbers written with different separators.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A phone number found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    pub start: usize,
    pub end: usize,
    pub digits: String,
}

/// Phone-number-like runs: digits joined by `-`, `.` or single spaces, at least 7 digits.
pub fn phone_numbers(text: &str) -> Vec<PhoneNumber> {
    const MIN_DIGITS: usize = 7;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let Some(&(start, c)) = chars.get(i) else {
            break;
        };
        if !c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        let mut end = start;
        while let Some(&(pos, c)) = chars.get(j) {
            if c.is_ascii_digit() {
                digits.push(c);
                end = pos + c.len_utf8();
                j += 1;
            } else if matches!(c, '-' | '.' | ' ')
                && chars.get(j + 1).is_some_and(|(_, n)| n.is_ascii_digit())
            {
                j += 1;
            } else {
                break;
            }
        }
        if digits.len() >= MIN_DIGITS {
            numbers.push(PhoneNumber { start, end, digits });
        }
        i = j.max(i + 1);
    }
    numbers
}

/// How a text begins with respect to the advertising label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelPrefix {
    /// Begins with exactly the label; the value is where the label ends.
    Exact(usize),
    /// Begins with something that reads as the label but is not it (`[광고]`, `(광 고)`,
    /// `(광.고)`, ` (광고)`); the value is where that look-alike ends.
    LookAlike(usize),
    /// No label at the start.
    Missing,
}

impl LabelPrefix {
    /// Where the text after the label (or after the look-alike) begins.
    pub fn end(self) -> usize {
        match self {
            LabelPrefix::Exact(end) | LabelPrefix::LookAlike(end) => end,
            LabelPrefix::Missing => 0,
        }
    }
}

/// Recognises `label` at the start of `text`. A look-alike is the label's `core` letters
/// (`광고`) at the start, possibly among `noise` characters (brackets, dots) and whitespace,
/// and set apart from what follows, so that `광고문의` (an inquiry about ads) is not taken for a
/// label.
pub fn label_prefix(text: &str, label: &str, core: &str, noise: &str) -> LabelPrefix {
    if !label.is_empty() && text.starts_with(label) {
        return LabelPrefix::Exact(label.len());
    }
    let core: Vec<char> = core.chars().collect();
    if core.is_empty() {
        return LabelPrefix::Missing;
    }
    let is_noise = |c: char| c.is_whitespace() || noise.contains(c);
    let mut matched = 0;
    let mut saw_noise = false;
    let mut chars = text.char_indices().peekable();
    while matched < core.len() {
        let Some((_, c)) = chars.next() else {
            return LabelPrefix::Missing;
        };
        if core.get(matched) == Some(&c) {
            matched += 1;
        } else if is_noise(c) {
            saw_noise = true;
        } else {
            return LabelPrefix::Missing;
        }
    }
    // Closing brackets and dots after the core belong to the look-alike; whitespace does not.
    let mut end = text.len();
    let mut set_apart = false;
    while let Some(&(pos, c)) = chars.peek() {
        if c.is_whitespace() {
            end = pos;
            set_apart = true;
            break;
        }
        if noise.contains(c) {
            saw_noise = true;
            chars.next();
            continue;
        }
        end = pos;
        break;
    }
    if chars.peek().is_none() {
        set_apart = true;
    }
    if saw_noise || set_apart {
        LabelPrefix::LookAlike(end)
    } else {
        LabelPrefix::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOISE: &str = "[](){}<>（）【】〔〕.·ㆍ_-*";

    #[test]
    fn words_respect_ascii_boundaries() {
        assert_eq!(find_words("Best No.1 pick", "No.1"), vec![(5, 9)]);
        assert!(find_words("No.10", "No.1").is_empty());
        assert!(find_words("secure", "cure").is_empty());
        assert_eq!(find_words("업계1위", "1위").len(), 1);
        assert!(find_words("21위", "1위").is_empty());
        assert_eq!(find_words("우리가 최고의", "최고").len(), 1);
    }

    #[test]
    fn hashtags_end_where_the_tag_ends() {
        assert!(find_words("#adventure time", "#ad").is_empty());
        assert_eq!(find_words("love #AD", "#ad"), vec![(5, 8)]);
        assert_eq!(find_words("#ad, yes", "#ad"), vec![(0, 3)]);
    }

    #[test]
    fn phone_numbers_are_found_with_separators() {
        let found = phone_numbers("무료거부 080-123-4567 or 02 123 4567, 30%");
        let digits: Vec<_> = found.iter().map(|p| p.digits.as_str()).collect();
        assert_eq!(digits, vec!["0801234567", "021234567"]);
    }

    #[test]
    fn label_look_alikes_are_recognised() {
        let l = |t| label_prefix(t, "(광고)", "광고", NOISE);
        assert_eq!(l("(광고)ABC"), LabelPrefix::Exact(8));
        assert_eq!(l("[광고]ABC"), LabelPrefix::LookAlike(8));
        assert_eq!(l("(광 고)ABC"), LabelPrefix::LookAlike(9));
        assert_eq!(l("(광.고)ABC"), LabelPrefix::LookAlike(9));
        assert_eq!(l(" (광고) ABC"), LabelPrefix::LookAlike(9));
        assert_eq!(l("광고 ABC"), LabelPrefix::LookAlike(6));
        assert_eq!(l("광고문의 주세요"), LabelPrefix::Missing);
        assert_eq!(l("ABC마트 (광고)"), LabelPrefix::Missing);
        assert_eq!(l(""), LabelPrefix::Missing);
    }
}
