//! Usage reports and CSV exports: exact totals, the same in JSON and CSV, safe to open in a
//! spreadsheet, scoped to the tenant, on both databases.

use std::time::Duration;

use crate::common::{csv, exec_sql, TestApp};
use flo2_core::PicoUsd;
use flo2_testkit::Scenario;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn column_sum(rows: &[Vec<String>], name: &str) -> PicoUsd {
    let i = rows[0].iter().position(|h| h == name).unwrap();
    rows[1..]
        .iter()
        .map(|r| PicoUsd::parse(&r[i]).unwrap())
        .sum()
}

#[tokio::test]
async fn a_million_one_token_calls_at_0_075_total_exactly_0_075() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let org = &a.org;
    // One million records, each one input token at $0.075 per million = 75,000 pico-USD,
    // generated inside the database (as a busy month would have written them).
    let sql = if app.db.is_postgres() {
        format!(
            "INSERT INTO usage_records (id, org_id, request_id, attempt, attempt_role, inbound_api, requested_model, provider, model, status, \
             input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_picousd, baseline_cost_picousd, \
             tokens_estimated, cache_hit, latency_ms, started_at, finished_at) \
             SELECT ('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, '{org}'::uuid, ('00000000-0000-7000-9000-' || lpad(i::text, 12, '0'))::uuid, \
             1, 'primary', 'openai', 'gemini/gemini-2.5-flash-lite', 'gemini', 'gemini-2.5-flash-lite', 200, 1, 0, 0, 0, 0, 75000, 75000, FALSE, FALSE, 5, \
             TIMESTAMPTZ '2026-10-01T00:00:00Z' + (i % 30) * INTERVAL '1 day', TIMESTAMPTZ '2026-10-01T00:00:00Z' + (i % 30) * INTERVAL '1 day' \
             FROM generate_series(1, 1000000) AS i"
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
             INSERT INTO usage_records (id, org_id, request_id, attempt, attempt_role, inbound_api, requested_model, provider, model, status, \
             input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_picousd, baseline_cost_picousd, \
             tokens_estimated, cache_hit, latency_ms, started_at, finished_at) \
             SELECT printf('00000000-0000-7000-8000-%012d', i), '{org}', printf('00000000-0000-7000-9000-%012d', i), 1, 'primary', 'openai', \
             'gemini/gemini-2.5-flash-lite', 'gemini', 'gemini-2.5-flash-lite', 200, 1, 0, 0, 0, 0, 75000, 75000, 0, 0, 5, \
             printf('2026-10-%02dT00:00:00.000000Z', 1 + i % 30), printf('2026-10-%02dT00:00:00.000000Z', 1 + i % 30) FROM n"
        )
    };
    assert_eq!(exec_sql(&app.db, &sql).await, 1_000_000);

    for group_by in ["day", "model", "month"] {
        let (status, report) = app
            .get(&format!("/api/v1/usage?group_by={group_by}"), &a.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["totals"]["calls"], 1_000_000);
        assert_eq!(report["totals"]["input_tokens"], 1_000_000);
        assert_eq!(
            report["totals"]["cost_usd"], "0.075000000000",
            "group_by={group_by}"
        );
        let rows_sum: PicoUsd = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| PicoUsd::parse(r["cost_usd"].as_str().unwrap()).unwrap())
            .sum();
        assert_eq!(rows_sum.to_string(), "0.075000000000");
    }
    let (_, by_day) = app.get("/api/v1/usage?group_by=day", &a.token).await;
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 30);
    assert_eq!(by_day["rows"][0]["key"], "2026-10-01");

    let summary = csv(&app, &a.token, "/api/v1/usage/summary.csv?group_by=day").await;
    assert_eq!(summary.len(), 31);
    assert_eq!(
        column_sum(&summary, "cost_usd").to_string(),
        "0.075000000000"
    );
}

#[tokio::test]
async fn csv_totals_equal_api_totals_and_formulas_are_neutralised() {
    let app = TestApp::start().await;
    let tenant = app.tenant_on_one_upstream(&["openai", "anthropic"]).await;
    let (a, fake) = (&tenant.owner, tenant.upstream());
    let evil = app
        .team(&a.token, "=HYPERLINK(\"http://evil.example\",\"click\")")
        .await;
    let plain = app.team(&a.token, "plain, with comma").await;
    let (_, evil_key) = app.api_key(&a.token, &evil, "+evil-key").await;
    let (_, plain_key) = app.api_key(&a.token, &plain, "plain").await;
    let calls = [
        (&evil_key, "openai/gpt-4o-mini", 1_234, 567),
        (&evil_key, "anthropic/claude-haiku-4-5", 9_999, 1),
        (&plain_key, "openai/gpt-4o", 3, 7_777),
        (&plain_key, "anthropic/claude-sonnet-4-5", 42, 42),
    ];
    for (key, model, input, output) in calls {
        fake.push(Scenario::text("ok").usage(input, output));
        let resp = app
            .http
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Wait for the batch writer.
    let mut report = Value::Null;
    for _ in 0..200 {
        report = app.get("/api/v1/usage?group_by=team", &a.token).await.1;
        if report["totals"]["calls"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(report["totals"]["calls"], 4);
    // Hand computation: 1234×0.15 + 567×0.60 + 9999×1 + 1×5 + 3×2.50 + 7777×10 + 42×3 + 42×15
    // = 185.1 + 340.2 + 9999 + 5 + 7.5 + 77770 + 126 + 630 = 89062.8 µUSD → $0.0890628.
    assert_eq!(report["totals"]["cost_usd"], "0.089062800000");
    let labels: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"plain, with comma"));

    let rows = csv(&app, &a.token, "/api/v1/usage/export.csv").await;
    assert_eq!(rows.len(), 5, "header + one line per call");
    assert_eq!(
        column_sum(&rows, "cost_usd").to_string(),
        "0.089062800000",
        "CSV total = API total"
    );
    let team = rows[0].iter().position(|h| h == "team").unwrap();
    let key = rows[0].iter().position(|h| h == "api_key").unwrap();
    let evil_cells: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| r[team].contains("HYPERLINK"))
        .collect();
    assert_eq!(evil_cells.len(), 2);
    assert!(
        evil_cells
            .iter()
            .all(|r| r[team].starts_with("'=") && r[key] == "'+evil-key"),
        "{evil_cells:?}"
    );
    let started = rows[0].iter().position(|h| h == "started_at").unwrap();
    assert!(
        rows[1..].iter().all(|r| r[started].ends_with('Z')),
        "UTC timestamps"
    );
    let summary = csv(&app, &a.token, "/api/v1/usage/summary.csv?group_by=model").await;
    assert_eq!(
        column_sum(&summary, "cost_usd").to_string(),
        "0.089062800000"
    );

    // Filters.
    let (_, only_openai) = app
        .get("/api/v1/usage?group_by=model&provider=openai", &a.token)
        .await;
    assert_eq!(only_openai["totals"]["calls"], 2);
    let (_, one_model) = app
        .get(
            "/api/v1/usage?group_by=provider&model=anthropic/claude-haiku-4-5",
            &a.token,
        )
        .await;
    assert_eq!(one_model["totals"]["cost_usd"], "0.010004000000");
    let (_, by_team) = app
        .get(
            &format!("/api/v1/usage?group_by=key&team_id={plain}"),
            &a.token,
        )
        .await;
    assert_eq!(by_team["rows"].as_array().unwrap().len(), 1);
    assert_eq!(by_team["rows"][0]["label"], "plain");
    let (_, future) = app
        .get("/api/v1/usage?from=2099-01-01T00:00:00Z", &a.token)
        .await;
    assert_eq!(future["totals"]["calls"], 0);
    assert_eq!(future["totals"]["cost_usd"], "0.000000000000");

    // Bad input, and another tenant sees nothing.
    let (status, body) = app.get("/api/v1/usage?group_by=colour", &a.token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, body) = app.get("/api/v1/usage?from=yesterday", &a.token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "{body}"
    );
    let b = app.signup("b@example.com", "B").await;
    let (_, theirs) = app.get("/api/v1/usage", &b.token).await;
    assert_eq!(theirs["totals"]["calls"], 0);
    let theirs_csv = csv(&app, &b.token, "/api/v1/usage/export.csv").await;
    assert_eq!(theirs_csv.len(), 1, "header only");
    let (_, theirs_filtered) = app
        .get(&format!("/api/v1/usage?team_id={plain}"), &b.token)
        .await;
    assert_eq!(theirs_filtered["totals"]["calls"], 0);
}
