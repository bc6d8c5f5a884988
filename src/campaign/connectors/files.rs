//! `files`: each order written as a dated bulk-upload file in `dir`, in its platform's format,
//! for an operator (or a sync job) to upload:
//!
//! - search: a Google Ads Editor CSV (campaign budgets, responsive search ads; see
//!   [`crate::domain::platform`]). A day's buys are the budget's to pace there, so they write no
//!   file.
//! - SMS, email and push: CSVs for a gateway: the creatives (variant, segment, subject, text),
//!   the daily budget, and the day's send list: one row per recipient (segment, variant, the
//!   recipient's pseudonym, send time) where compliance drew one member by member, else the
//!   day's sends per segment and variant (spend).
//! - social and display: JSON Lines, one order per line.
//!
//! The path is `<dir>/<tenant>/<campaign>/<date>/<day>-<channel>-<kind>-<key>.<ext>` (a tenant's
//! `/` written `_`), so a repeated delivery rewrites the same file. Each file is checked against
//! its platform's rules first and written whole (to a temporary name, then renamed), so no reader
//! ever sees half of one.

use std::path::{Path, PathBuf};

use super::{Connector, Delivery};
use crate::domain::campaign::Channel;
use crate::domain::order::{Order, OrderBody};
use crate::domain::platform::{EDITOR_COLUMNS, editor_amount, editor_rows};

pub struct FilesConnector {
    pub dir: PathBuf,
}

impl Connector for FilesConnector {
    fn deliver<'a>(&'a self, order: &'a Order) -> Delivery<'a> {
        Box::pin(async move {
            let Some((name, bytes)) = render(order)? else {
                return Ok(());
            };
            let path = self.path_of(order, &name);
            tokio::task::spawn_blocking(move || write_whole(&path, &bytes))
                .await
                .map_err(|e| format!("the file task stopped: {e}"))?
        })
    }
}

impl FilesConnector {
    fn path_of(&self, order: &Order, name: &str) -> PathBuf {
        self.dir
            .join(order.tenant.as_str().replace('/', "_"))
            .join(order.campaign.as_str())
            .join(order.created_at.format("%Y-%m-%d").to_string())
            .join(name)
    }
}

fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let folder = path.parent().ok_or("a file path without a folder")?;
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)
        .map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}

/// The file's name and content, or `None` when the order needs no file.
pub fn render(order: &Order) -> Result<Option<(String, Vec<u8>)>, String> {
    let stem = format!(
        "{:03}-{}-{}-{}",
        order.day,
        order.channel,
        order.body.kind(),
        order.key
    );
    match order.channel {
        Channel::Search => {
            let rows = editor_rows(order).map_err(|p| p.join("; "))?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut header = vec![EDITOR_COLUMNS.iter().map(|c| c.to_string()).collect()];
            header.extend(rows);
            Ok(Some((format!("{stem}.csv"), csv_bytes(&header)?)))
        }
        Channel::Sms | Channel::Email | Channel::Push => Ok(Some((
            format!("{stem}.csv"),
            csv_bytes(&send_list(order)?)?,
        ))),
        Channel::Social | Channel::Display => {
            let mut line = serde_json::to_vec(order).map_err(|e| e.to_string())?;
            line.push(b'\n');
            Ok(Some((format!("{stem}.jsonl"), line)))
        }
    }
}

/// A messaging gateway's rows, header first.
fn send_list(order: &Order) -> Result<Vec<Vec<String>>, String> {
    let campaign = order.campaign.to_string();
    let money = |amount: f64| editor_amount(amount, &order.currency);
    let rows = match &order.body {
        OrderBody::Creatives {
            segment, creatives, ..
        } => {
            let mut rows = vec![vec![
                "campaign".to_owned(),
                "channel".to_owned(),
                "segment".to_owned(),
                "variant".to_owned(),
                "subject".to_owned(),
                "text".to_owned(),
            ]];
            for creative in creatives {
                if creative.message.text.trim().is_empty() {
                    return Err(format!("creative {} has no text", creative.variant));
                }
                if order.channel == Channel::Email && creative.message.subject.is_none() {
                    return Err(format!(
                        "email creative {} has no subject",
                        creative.variant
                    ));
                }
                rows.push(vec![
                    campaign.clone(),
                    order.channel.to_string(),
                    segment.clone(),
                    creative.variant.clone(),
                    creative.message.subject.clone().unwrap_or_default(),
                    creative.message.text.clone(),
                ]);
            }
            rows
        }
        OrderBody::Buys {
            recipients,
            send_at,
            ..
        } if !recipients.is_empty() => {
            let send_at = send_at
                .map(|t| t.to_rfc3339())
                .ok_or("a send list without its send time")?;
            let mut rows = vec![
                [
                    "campaign",
                    "day",
                    "channel",
                    "segment",
                    "variant",
                    "recipient",
                    "send_at",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for recipient in recipients {
                rows.push(vec![
                    campaign.clone(),
                    order.day.to_string(),
                    order.channel.to_string(),
                    recipient.segment.clone(),
                    recipient.variant.clone(),
                    recipient.subject.clone(),
                    send_at.clone(),
                ]);
            }
            rows
        }
        OrderBody::Buys { lines, .. } => {
            let mut rows = vec![vec![
                "campaign".to_owned(),
                "day".to_owned(),
                "channel".to_owned(),
                "segment".to_owned(),
                "variant".to_owned(),
                "spend".to_owned(),
                "currency".to_owned(),
            ]];
            for line in lines {
                rows.push(vec![
                    campaign.clone(),
                    order.day.to_string(),
                    order.channel.to_string(),
                    line.segment.clone(),
                    line.variant.clone(),
                    money(line.spend)?,
                    order.currency.clone(),
                ]);
            }
            rows
        }
        OrderBody::Budget { daily } => vec![
            vec![
                "campaign".to_owned(),
                "channel".to_owned(),
                "daily_budget".to_owned(),
                "currency".to_owned(),
            ],
            vec![
                campaign,
                order.channel.to_string(),
                money(*daily)?,
                order.currency.clone(),
            ],
        ],
    };
    Ok(rows)
}

fn csv_bytes(rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}
