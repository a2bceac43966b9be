//! Usage records read back exactly as they were written, on both databases: every field, the
//! awkward texts and the extreme numbers, in batches of every size the writer sends, and a batch
//! written twice keeps one row per record.

use crate::common::TestApp;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use flo2_core::{CredentialId, GatewayKeyId, OrgId, TeamId};
use flo2_store::UsageRecord;
use uuid::Uuid;

/// Record `i` of a batch: fields alternate between present and absent, texts carry quotes,
/// backslashes, control characters and non-ASCII, and numbers reach `i64`'s ends.
fn record(org: OrgId, i: usize, start: DateTime<Utc>) -> UsageRecord {
    let odd = i % 2 == 1;
    let texts = [
        "gpt-4o-mini",
        "quote \" and backslash \\ and slash /",
        "line\nbreak\ttab\u{1}control",
        "ünïcødé ✓ 模型 🚀",
        "",
    ];
    let text = texts[i % texts.len()];
    let started_at = start + Duration::microseconds(i as i64 * 1_001);
    UsageRecord {
        id: Uuid::now_v7(),
        org_id: org,
        team_id: odd.then(|| TeamId::from_uuid(Uuid::now_v7())),
        gateway_key_id: (!odd).then(|| GatewayKeyId::from_uuid(Uuid::now_v7())),
        request_id: Uuid::new_v4(),
        attempt: i as i64 + 1,
        attempt_role: if odd { "fallback" } else { "primary" }.into(),
        inbound_api: if odd { "anthropic" } else { "openai" }.into(),
        requested_model: text.to_owned(),
        route: odd.then(|| format!("route {text}")),
        provider: "openai".into(),
        model: text.to_owned(),
        credential_id: odd.then(|| CredentialId::from_uuid(Uuid::now_v7())),
        status: if odd { 529 } else { 200 },
        error_kind: odd.then(|| format!("upstream {text}").into()),
        input_tokens: i as i64,
        output_tokens: i64::MAX - i as i64,
        cached_input_tokens: 0,
        cache_write_tokens: 7,
        reasoning_tokens: 3,
        cost_picousd: if odd { i64::MAX } else { 0 },
        baseline_cost_picousd: 123_456_789_012_345_678,
        tokens_estimated: odd,
        unpriced: !odd,
        cache_hit: !odd,
        latency_ms: 1_234,
        ttft_ms: odd.then_some(56),
        started_at,
        finished_at: started_at + Duration::milliseconds(1_234),
    }
}

/// A running flo2 on a fresh database, and the organization of a new account on it.
async fn app_with_org(email: &str) -> (TestApp, OrgId) {
    let app = TestApp::start().await;
    let account = app.signup(email, "Usage Org").await;
    let org = account.org.parse().unwrap();
    (app, org)
}

#[tokio::test]
async fn usage_records_read_back_exactly_and_a_rewritten_batch_is_not_duplicated() {
    let (app, org) = app_with_org("usage@example.com").await;
    let start = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();

    // One record, a typical batch, the writer's largest batch and one past it.
    let mut written = Vec::new();
    for size in [1, 100, 1_000, 1_001] {
        let at = start + Duration::seconds(written.len() as i64 * 10);
        let batch: Vec<UsageRecord> = (0..size).map(|i| record(org, i, at)).collect();
        app.store().insert_usage(&batch).await.unwrap();
        written.extend(batch);
    }
    // The last batch again, as the writer retries one whose outcome it did not learn.
    let retried = written[written.len() - 1_001..].to_vec();
    app.store().insert_usage(&retried).await.unwrap();

    let read = app.store().usage_records(org, 10_000).await.unwrap();
    assert_eq!(read.len(), written.len(), "one row per record");
    for (got, want) in read.iter().zip(&written) {
        assert_eq!(got, want);
    }
    app.stop().await;
}

/// A caller picks the model name, and PostgreSQL text cannot hold NUL: one such record must not
/// fail its batch (the writer would retry it forever and record nothing else). Both databases
/// store U+FFFD in its place, so they read back alike.
#[tokio::test]
async fn a_nul_in_a_text_is_stored_as_a_replacement_character() {
    let (app, org) = app_with_org("nul@example.com").await;
    let start = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();

    let plain = record(org, 0, start);
    let mut poisoned = record(org, 1, start + Duration::seconds(1));
    poisoned.requested_model = "gpt\0-4o".into();
    poisoned.model = "\0".into();
    poisoned.route = Some("route\0\0".into());
    poisoned.error_kind = Some("kind\0".to_owned().into());
    app.store()
        .insert_usage(&[plain.clone(), poisoned.clone()])
        .await
        .unwrap();

    let read = app.store().usage_records(org, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0], plain);
    let mut want = poisoned;
    want.requested_model = "gpt\u{FFFD}-4o".into();
    want.model = "\u{FFFD}".into();
    want.route = Some("route\u{FFFD}\u{FFFD}".into());
    want.error_kind = Some("kind\u{FFFD}".to_owned().into());
    assert_eq!(read[1], want);
    app.stop().await;
}
