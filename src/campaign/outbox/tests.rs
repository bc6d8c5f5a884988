use chrono::{DateTime, Utc};

use super::*;
use crate::domain::campaign::Channel;
use crate::domain::order::{BuyLine, Order, OrderBody, RetryPolicy, order_key};
use crate::kb::{Durability, KbOptions};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn kb() -> (tempfile::TempDir, KnowledgeBase) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    (dir, KnowledgeBase::open(&options).unwrap())
}

fn order(campaign: &str, day: u32) -> Order {
    let (tenant, campaign) = (TenantId::new("acme"), CampaignId::new(campaign));
    let step = format!("buys/day/{day}/sms");
    Order {
        key: order_key(&tenant, &campaign, &step),
        tenant,
        campaign,
        step,
        channel: Channel::Sms,
        day,
        currency: "KRW".to_owned(),
        body: OrderBody::Buys {
            lines: vec![BuyLine {
                segment: "students".to_owned(),
                variant: "v1".to_owned(),
                spend: 1000.0,
            }],
            recipients: Vec::new(),
            send_at: None,
        },
        created_at: at("2026-09-01T00:00:00Z"),
    }
}

const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 2,
    initial_ms: 1_000,
    max_ms: 10_000,
};

#[tokio::test]
async fn an_order_is_written_once_and_retried_until_dead_lettered() {
    let (_dir, kb) = kb();
    let outbox = Outbox::open(&kb).unwrap();
    let now = at("2026-12-01T00:00:00Z");
    let first = order("spring", 0);
    assert!(outbox.write(&first, "hook", now).await.unwrap());
    assert!(
        !outbox.write(&first, "hook", now).await.unwrap(),
        "written once"
    );
    assert_eq!(outbox.pending().unwrap().len(), 1);

    let failed = outbox
        .settle(&first.key, Err("503".to_owned()), &POLICY, 0.0, now)
        .await
        .unwrap();
    assert_eq!(failed.state, OrderState::Pending);
    assert_eq!(
        failed.next_attempt_at,
        now + chrono::Duration::milliseconds(500)
    );
    let dead = outbox
        .settle(&first.key, Err("503 again".to_owned()), &POLICY, 0.0, now)
        .await
        .unwrap();
    assert_eq!(dead.state, OrderState::DeadLettered);
    assert!(outbox.pending().unwrap().is_empty());
    let (tenant, campaign) = (&first.tenant, &first.campaign);
    assert_eq!(outbox.dead_letters(tenant, campaign).unwrap().len(), 1);
    assert!(
        outbox
            .dead_letters(tenant, &CampaignId::new("other"))
            .unwrap()
            .is_empty()
    );

    // An operator's retry makes it pending with its attempts from zero; a delivery settles it.
    let retried = outbox
        .retry(&first.key, "ops: fixed".to_owned(), now)
        .await
        .unwrap();
    assert_eq!((retried.state, retried.failures), (OrderState::Pending, 0));
    assert!(outbox.dead_letters(tenant, campaign).unwrap().is_empty());
    let done = outbox
        .settle(&first.key, Ok(()), &POLICY, 0.0, now)
        .await
        .unwrap();
    assert_eq!(done.state, OrderState::Delivered);
    assert!(matches!(
        outbox.cancel(&first.key, "late".to_owned()).await,
        Err(ChangeError::Refused { .. })
    ));
    assert!(matches!(
        outbox.retry("ord_none", String::new(), now).await,
        Err(ChangeError::Unknown(_))
    ));
}

#[tokio::test]
async fn a_cancelled_order_stays_cancelled_and_a_campaign_lists_in_day_order() {
    let (_dir, kb) = kb();
    let outbox = Outbox::open(&kb).unwrap();
    let now = at("2026-12-01T00:00:00Z");
    for day in [2, 0, 1] {
        outbox
            .write(&order("spring", day), "hook", now)
            .await
            .unwrap();
    }
    outbox
        .write(&order("autumn", 0), "hook", now)
        .await
        .unwrap();
    let key = order("spring", 1).key;
    outbox.cancel(&key, "ops: wrong".to_owned()).await.unwrap();
    // A delivery that was in flight when it was cancelled does not revive it.
    let settled = outbox
        .settle(&key, Ok(()), &POLICY, 0.0, now)
        .await
        .unwrap();
    assert_eq!(settled.state, OrderState::Cancelled);
    assert_eq!(outbox.pending().unwrap().len(), 3);

    let (tenant, campaign) = (TenantId::new("acme"), CampaignId::new("spring"));
    let all = outbox.of_campaign(&tenant, &campaign, None, 10).unwrap();
    let days: Vec<u32> = all.iter().map(|e| e.order.day).collect();
    assert_eq!(days, [0, 1, 2]);
    let rest = outbox
        .of_campaign(&tenant, &campaign, Some(&all[0]), 10)
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].order.day, 1);
}
