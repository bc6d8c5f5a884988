//! Mechanical fixes: the changes a finding suggests that need no judgement (put the label first,
//! name the sender, move the disclosure to the front, append the opt-out line, send later), and
//! `apply_fixes`, which applies them in a fixed order.
//!
//! Each fix carries what it needs and re-locates its target in the current text, so fixes compose
//! whatever order the findings came in. A fix must never invent content a person should write: a
//! claim without evidence has no fix here.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::message::Message;
use super::text;
use super::verdict::{Field, Finding};

/// One mechanical change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Put `label` at the start of the text or the subject, first removing `replace` (a wrong
    /// label such as `[광고]`) when the field begins with it.
    PrependLabel {
        field: Field,
        label: String,
        replace: Option<String>,
    },
    /// Make the business `name` (and `contact`, when given and absent) follow `after` (the label);
    /// a name already there inside any of `brackets` counts.
    InsertSender {
        after: String,
        name: String,
        contact: Option<String>,
        brackets: String,
    },
    /// Put the disclosure `tag` at the start, after any of `skip` (the label, the sender's name)
    /// and the characters in `skip_chars`, removing it from where it was buried.
    MoveDisclosure {
        tag: String,
        skip: Vec<String>,
        skip_chars: String,
    },
    /// Remove `remove` (a paid or misplaced opt-out) and end the text with `separator` + `line`.
    AppendOptOut {
        line: String,
        separator: String,
        remove: Option<String>,
    },
    /// Send at `to` instead.
    Reschedule { to: DateTime<FixedOffset> },
}

impl Fix {
    /// The order fixes are applied in: the label first, because the sender and the disclosure are
    /// placed after it; the opt-out last among text changes, because it must end the text.
    fn rank(&self) -> u8 {
        match self {
            Fix::PrependLabel { .. } => 0,
            Fix::InsertSender { .. } => 1,
            Fix::MoveDisclosure { .. } => 2,
            Fix::AppendOptOut { .. } => 3,
            Fix::Reschedule { .. } => 4,
        }
    }

    /// The distinct fixes of `fixes`, in application order.
    pub fn ordered(fixes: impl IntoIterator<Item = Fix>) -> Vec<Fix> {
        let mut out: Vec<Fix> = Vec::new();
        for fix in fixes {
            if !out.contains(&fix) {
                out.push(fix);
            }
        }
        out.sort_by_key(Fix::rank);
        out
    }
}

/// A message with fixes applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixedMessage {
    pub message: Message,
    /// The new send time, when a fix moved it.
    pub send_at: Option<DateTime<FixedOffset>>,
    /// The fixes applied, in order.
    pub applied: Vec<Fix>,
}

/// Applies every fix the findings suggest. Findings without a fix are left for a person.
pub fn apply_fixes(message: &Message, findings: &[Finding]) -> FixedMessage {
    let fixes = Fix::ordered(findings.iter().filter_map(|f| f.fix.clone()));
    let mut message = message.clone();
    let mut send_at: Option<DateTime<FixedOffset>> = None;
    for fix in &fixes {
        match fix {
            Fix::PrependLabel {
                field,
                label,
                replace,
            } => {
                if *field == Field::Subject {
                    let subject = message.subject.take().unwrap_or_default();
                    message.subject = Some(prepend_label(&subject, label, replace.as_deref()));
                } else {
                    message.text = prepend_label(&message.text, label, replace.as_deref());
                }
            }
            Fix::InsertSender {
                after,
                name,
                contact,
                brackets,
            } => {
                message.text =
                    insert_sender(&message.text, after, name, contact.as_deref(), brackets)
            }
            Fix::MoveDisclosure {
                tag,
                skip,
                skip_chars,
            } => message.text = move_disclosure(&message.text, tag, skip, skip_chars),
            Fix::AppendOptOut {
                line,
                separator,
                remove,
            } => message.text = append_opt_out(&message.text, line, separator, remove.as_deref()),
            // Several time rules may move the send time; the latest answer satisfies the rule
            // that asked for it, and the caller reviews again to confirm the others.
            Fix::Reschedule { to } => send_at = Some(send_at.map_or(*to, |s| s.max(*to))),
        }
    }
    FixedMessage {
        message,
        send_at,
        applied: fixes,
    }
}

fn prepend_label(field: &str, label: &str, replace: Option<&str>) -> String {
    if field.starts_with(label) {
        return field.to_owned();
    }
    let rest = replace
        .and_then(|wrong| field.strip_prefix(wrong))
        .unwrap_or(field);
    format!("{label}{rest}")
}

/// Where the text after the `after` prefix begins, past whitespace.
fn after_prefix(text: &str, after: &str) -> usize {
    let start = if !after.is_empty() && text.starts_with(after) {
        after.len()
    } else {
        0
    };
    let rest = text.get(start..).unwrap_or_default();
    start + (rest.len() - rest.trim_start().len())
}

fn insert_at(text: &str, at: usize, insert: &str) -> String {
    match (text.get(..at), text.get(at..)) {
        (Some(head), Some(tail)) => format!("{head}{insert}{tail}"),
        _ => format!("{insert}{text}"),
    }
}

fn insert_sender(
    text: &str,
    after: &str,
    name: &str,
    contact: Option<&str>,
    brackets: &str,
) -> String {
    let at = after_prefix(text, after);
    let rest = text.get(at..).unwrap_or_default();
    let bracketed = rest.trim_start_matches(|c: char| c.is_whitespace() || brackets.contains(c));
    let name_at = at + (rest.len() - bracketed.len());
    let (mut out, name_end) = if text::starts_with_ci(bracketed, name) {
        (text.to_owned(), name_at + name.len())
    } else {
        (insert_at(text, at, &format!("{name} ")), at + name.len())
    };
    if let Some(contact) = contact.filter(|c| !contains_contact(&out, c)) {
        out = insert_at(&out, name_end, &format!(" {contact}"));
    }
    out
}

/// Whether `contact` appears in `text`, as the same phone number or literally.
pub fn contains_contact(text: &str, contact: &str) -> bool {
    let digits = text::digits(contact);
    (digits.len() >= 7 && text::phone_numbers(text).iter().any(|p| p.digits == digits))
        || text::contains_ci(text, contact.trim())
}

/// Where the start of the text is for a disclosure: past whitespace, `skip_chars` and any of `skip`.
pub fn disclosure_start(text: &str, skip: &[String], skip_chars: &str) -> usize {
    let mut at = 0;
    loop {
        let rest = text.get(at..).unwrap_or_default();
        let trimmed =
            rest.trim_start_matches(|c: char| c.is_whitespace() || skip_chars.contains(c));
        at += rest.len() - trimmed.len();
        match skip
            .iter()
            .filter(|s| !s.is_empty())
            .find(|s| text::starts_with_ci(trimmed, s))
        {
            Some(prefix) => at += prefix.len(),
            None => return at,
        }
    }
}

fn move_disclosure(text: &str, tag: &str, skip: &[String], skip_chars: &str) -> String {
    let start = disclosure_start(text, skip, skip_chars);
    if text::find_words(text, tag).iter().any(|&(s, _)| s == start) {
        return text.to_owned();
    }
    let without = match text::find_words(text, tag).first() {
        Some(&(s, e)) => remove_span(text, s, e),
        None => text.to_owned(),
    };
    let start = disclosure_start(&without, skip, skip_chars);
    let rest = without.get(start..).unwrap_or_default();
    let spacer = if rest.is_empty() { "" } else { " " };
    insert_at(&without, start, &format!("{tag}{spacer}"))
}

/// Removes `[s, e)` and the whitespace on one side of it, so no double space is left behind.
fn remove_span(text: &str, s: usize, e: usize) -> String {
    let (Some(head), Some(tail)) = (text.get(..s), text.get(e..)) else {
        return text.to_owned();
    };
    let head = head.trim_end();
    let tail = tail.trim_start();
    let joiner = if head.is_empty() || tail.is_empty() {
        ""
    } else {
        " "
    };
    format!("{head}{joiner}{tail}")
}

fn append_opt_out(text: &str, line: &str, separator: &str, remove: Option<&str>) -> String {
    // Already applied: removing `remove` again could take it out of the appended line itself.
    if text.trim_end().ends_with(line) {
        return text.trim_end().to_owned();
    }
    let mut out = text.to_owned();
    if let Some(old) = remove.filter(|r| !r.is_empty())
        && let Some(at) = out.rfind(old)
    {
        out = remove_span(&out, at, at + old.len());
    }
    let body = out.trim_end();
    if body.ends_with(line) {
        return body.to_owned();
    }
    if body.is_empty() {
        line.to_owned()
    } else {
        format!("{body}{separator}{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_label_is_replaced_not_doubled() {
        assert_eq!(
            prepend_label("[광고]ABC마트 봄세일", "(광고)", Some("[광고]")),
            "(광고)ABC마트 봄세일"
        );
        assert_eq!(prepend_label("(광고)ABC", "(광고)", None), "(광고)ABC");
        assert_eq!(prepend_label("봄세일", "(광고)", None), "(광고)봄세일");
    }

    #[test]
    fn the_sender_goes_right_after_the_label() {
        assert_eq!(
            insert_sender(
                "(광고) 봄세일",
                "(광고)",
                "ABC마트",
                Some("02-123-4567"),
                "[]"
            ),
            "(광고) ABC마트 02-123-4567 봄세일"
        );
        assert_eq!(
            insert_sender("(광고)[ABC마트] 봄세일", "(광고)", "ABC마트", None, "[]"),
            "(광고)[ABC마트] 봄세일"
        );
    }

    #[test]
    fn a_buried_tag_moves_to_the_front() {
        assert_eq!(
            move_disclosure("Love it #tbt #ootd #ad", "#ad", &[], ""),
            "#ad Love it #tbt #ootd"
        );
        assert_eq!(
            move_disclosure("(광고)Love it #ad", "#ad", &["(광고)".to_owned()], ""),
            "(광고)#ad Love it"
        );
        assert_eq!(
            move_disclosure("#ad Love it", "#ad", &[], ""),
            "#ad Love it"
        );
    }

    #[test]
    fn a_paid_opt_out_is_replaced_by_the_free_line() {
        assert_eq!(
            append_opt_out(
                "봄세일 수신거부 02-123-4567",
                "무료거부 0801234567",
                " ",
                Some("수신거부 02-123-4567")
            ),
            "봄세일 무료거부 0801234567"
        );
        assert_eq!(
            append_opt_out("봄세일 ", "무료거부 0801234567", " ", None),
            "봄세일 무료거부 0801234567"
        );
    }
}
