//! One bad value cannot take an organization down, on both databases: every time and number the
//! price and route APIs store lies within what both databases store and read back (refused with
//! 422 `invalid_field` otherwise), each column type round-trips at its limits, a stored entry
//! that cannot be read back is skipped (logged and audited) instead of failing the whole
//! organization, and prices can be listed by id and deleted.

use crate::common::{exec_sql, Tenant, TestApp};
use chrono::{DateTime, Utc};
use flo2_core::{ModelPrice, OrgId, PricePerMtok, ProviderKind};
use flo2_store::types::{earliest_storable_time, latest_storable_time};
use flo2_store::PriceOverride;
use flo2_testkit::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// An organization with an OpenAI key at a fake upstream that reports one million input tokens
/// per call (so the cost header is the input price), and a gateway key.
async fn tenant(app: &TestApp) -> Tenant<'_> {
    let answer = Scenario::text("ok").usage(1_000_000, 0);
    app.tenant(&["openai"]).await.answering(answer)
}

fn price_body(model: &str, from: &str) -> Value {
    json!({"provider": "openai", "model": model, "input_per_mtok": "1", "output_per_mtok": "1", "effective_from": from})
}

#[tokio::test]
async fn times_and_prices_the_databases_cannot_hold_are_refused_naming_the_field() {
    let app = TestApp::start().await;
    let s = tenant(&app).await;
    for from in [
        "9999-12-31T23:59:59-05:00",
        "-0001-01-01T00:00:00Z",
        "0000-12-31T23:59:59.999999Z",
    ] {
        let (status, body) = s.price(price_body("gpt-4o-mini", from)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{from}: {body}");
        assert_eq!(body["code"], "invalid_field");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("`effective_from`"),
            "{body}"
        );
    }
    for field in [
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "reasoning_per_mtok",
    ] {
        let mut body = price_body("gpt-4o-mini", "2020-01-01T00:00:00Z");
        body[field] = json!("1000000.000001");
        let (status, answer) = s.price(body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{answer}"
        );
    }
    // Nothing was stored, and the organization works.
    assert!(s.own_prices().await.is_empty());
    assert_eq!(s.chat_cost("openai/gpt-4o-mini").await.0, StatusCode::OK);

    // The limits themselves are accepted and read back exactly.
    for (model, from) in [
        ("earliest", "0001-01-01T00:00:00Z"),
        ("latest", "9999-12-31T23:59:59.999999Z"),
    ] {
        let mut body = price_body(model, from);
        body["input_per_mtok"] = json!("1000000");
        body["output_per_mtok"] = json!("0");
        body["context_window"] = json!(u32::MAX);
        let (status, answer) = s.price(body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let own = s.own_prices().await;
    assert_eq!(own.len(), 2);
    for p in &own {
        let from: DateTime<Utc> = p["effective_from"].as_str().unwrap().parse().unwrap();
        let want = if p["model"] == "earliest" {
            earliest_storable_time()
        } else {
            latest_storable_time()
        };
        assert_eq!(from, want, "{p}");
        assert_eq!(p["input_per_mtok"], "1000000.000000");
        assert_eq!(p["output_per_mtok"], "0.000000");
        assert_eq!(p["context_window"], u32::MAX);
        assert!(p["id"].as_str().unwrap().parse::<Uuid>().is_ok(), "{p}");
    }
    assert_eq!(s.chat_cost("openai/gpt-4o-mini").await.0, StatusCode::OK);
    drop(s);
    app.stop().await;
}

/// Each column type of the prices table at its limits, through the store on either database:
/// times at the first and last storable microsecond, integers at 0 and `i64::MAX`, booleans in
/// all three states.
#[tokio::test]
async fn price_columns_round_trip_at_their_limits() {
    let app = TestApp::start().await;
    let account = app.signup("limits@example.com", "Limits").await;
    let org: OrgId = account.org.parse().unwrap();
    let created = Utc::now();
    let created = DateTime::from_timestamp_micros(created.timestamp_micros()).unwrap();
    let mut written = Vec::new();
    for (i, (from, micros, window, flag)) in [
        (earliest_storable_time(), 0, i64::MIN, Some(false)),
        (latest_storable_time(), i64::MAX, i64::MAX, Some(true)),
        (created, 1, 0, None),
    ]
    .into_iter()
    .enumerate()
    {
        let price = PriceOverride {
            id: Uuid::now_v7(),
            provider: ProviderKind::OpenAi,
            model: format!("limit-{i} ünïcødé \"quoted\""),
            price: ModelPrice {
                input: PricePerMtok(micros),
                output: PricePerMtok(micros),
                cached_input: (i != 2).then_some(PricePerMtok(micros)),
                cache_write: None,
                reasoning: Some(PricePerMtok(i64::MAX - micros)),
            },
            context_window: Some(window),
            tools: flag,
            vision: flag.map(|f| !f),
            json: flag,
            effective_from: from,
            created_at: created,
        };
        app.store().create_price(org, &price, None).await.unwrap();
        written.push(price);
    }
    let mut read = app.store().prices(org).await.unwrap();
    read.sort_by_key(|p| p.model.clone());
    assert_eq!(read, written);
    let loaded = app.store().prices_loaded(org).await.unwrap();
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.entries.len(), 3);
    app.stop().await;
}

/// Route policies are stored as JSON text: every number at its type's limit reads back as sent.
#[tokio::test]
async fn route_numbers_round_trip_at_their_limits() {
    let app = TestApp::start().await;
    let s = tenant(&app).await;
    let route = json!({
        "strategy": "weighted",
        "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "weight": u32::MAX},
            {"provider": "openai", "model": "gpt-4o", "weight": 1}
        ],
        "max_input_per_mtok": "9223372036854.775807",
        "max_output_per_mtok": "0",
        "expected_output_tokens": u32::MAX,
        "explore_percent": 50,
        "fallback": {"enabled": true, "retries_per_target": 5, "deadline_ms": 600000, "attempt_timeout_ms": 600000},
        "race": {"mode": "hedged", "pick": "longest", "hedge_delay_ms": 600000, "fanout": 8}
    });
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/routes/limits",
            Some(&s.owner.token),
            Some(route.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, read) = app.get("/api/v1/routes/limits", &s.owner.token).await;
    assert_eq!(status, StatusCode::OK);
    for (k, v) in route.as_object().unwrap() {
        assert_eq!(&read[k], v, "{k}");
    }
    drop(s);
    app.stop().await;
}

#[tokio::test]
async fn a_stored_entry_that_cannot_be_read_is_skipped_logged_and_audited() {
    let app = TestApp::start().await;
    let s = tenant(&app).await;
    // A good price the organization relies on.
    let (status, good) = s
        .price(json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": "7", "output_per_mtok": "7", "effective_from": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{good}");
    assert_eq!(
        s.chat_cost("openai/gpt-4o-mini").await,
        (StatusCode::OK, "7.000000000000".to_owned())
    );

    // Rows written behind the API's back: a time neither flo2 nor chrono reads, an unknown
    // provider, a route that is not JSON, a provider key of an unknown provider.
    let org = &s.owner.org;
    let (bad_time, bad_provider, bad_route, bad_key) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let (unreadable_time, blob) = if app.db.is_postgres() {
        ("infinity", r"'\x00'")
    } else {
        ("+10000-01-01T04:59:59.000000Z", "X'00'")
    };
    let ts = "2020-01-01T00:00:00.000000Z";
    exec_sql(
        &app.db,
        &format!(
            "INSERT INTO prices (id, org_id, provider, model, input_micros_per_mtok, output_micros_per_mtok, effective_from, created_at) \
             VALUES ('{bad_time}', '{org}', 'openai', 'gpt-4o-mini', 1, 1, '{unreadable_time}', '{ts}'); \
             INSERT INTO prices (id, org_id, provider, model, input_micros_per_mtok, output_micros_per_mtok, effective_from, created_at) \
             VALUES ('{bad_provider}', '{org}', 'bogus', 'x', 1, 1, '{ts}', '{ts}'); \
             INSERT INTO routes (id, org_id, name, config, created_at, updated_at) \
             VALUES ('{bad_route}', '{org}', 'broken', '{{not json', '{ts}', '{ts}'); \
             INSERT INTO provider_credentials (id, org_id, provider, name, base_url, ciphertext, hint, created_at, updated_at) \
             VALUES ('{bad_key}', '{org}', 'bogus', 'bad', NULL, {blob}, '…0000', '{ts}', '{ts}');"
        ),
    )
    .await;
    // Any change makes the gateway reload the organization's configuration.
    let (status, _) = s
        .price(json!({"provider": "openai", "model": "other", "input_per_mtok": "1", "output_per_mtok": "1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The organization still works, at its good price, and lists its readable prices.
    assert_eq!(
        s.chat_cost("openai/gpt-4o-mini").await,
        (StatusCode::OK, "7.000000000000".to_owned())
    );
    let own = s.own_prices().await;
    let ids: Vec<&str> = own.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{own:#?}");
    assert!(ids.contains(&good["id"].as_str().unwrap()));
    let (status, routes) = app.get("/api/v1/routes", &s.owner.token).await;
    assert_eq!(status, StatusCode::OK, "{routes}");
    assert_eq!(routes, json!([]), "the unreadable route is left out");
    let (status, keys) = app.get("/api/v1/provider-keys", &s.owner.token).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    // The dashboard's pages read the same lists.
    for page in ["/app/prices", "/app/routes", "/app/provider-keys", "/app"] {
        let resp = app
            .http
            .get(app.url(page))
            .header("cookie", format!("flo2_session={}", s.owner.token))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        assert_eq!(resp.url().path(), page, "not sent to the login page");
    }

    // Each skipped entry is in the audit log, once, by id.
    let (status, log) = app
        .get(
            "/api/v1/audit-log?action=config.entry_skipped",
            &s.owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let skipped: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target_type"].as_str().unwrap().to_owned(),
                e["target_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want = vec![
        ("price".to_owned(), bad_time.to_string()),
        ("price".to_owned(), bad_provider.to_string()),
        ("route".to_owned(), bad_route.to_string()),
        ("provider_key".to_owned(), bad_key.to_string()),
    ];
    let mut got = skipped.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{log:#}");
    assert!(log["entries"][0]["actor"]["id"].is_null());

    // The bad prices can be deleted by the id the audit log names.
    for id in [bad_time, bad_provider] {
        let (status, body) = app
            .delete(&format!("/api/v1/prices/{id}"), &s.owner.token)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    assert_eq!(s.chat_cost("openai/gpt-4o-mini").await.0, StatusCode::OK);
    drop(s);
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_price_stops_applying_at_once_and_only_its_tenant_can_delete_it() {
    let app = TestApp::start().await;
    let s = tenant(&app).await;
    let (status, price) = s
        .price(json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": "1000", "output_per_mtok": "1000", "effective_from": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{price}");
    let id = price["id"].as_str().unwrap();
    assert_eq!(s.own_prices().await[0]["id"], id);
    assert_eq!(
        s.chat_cost("openai/gpt-4o-mini").await.1,
        "1000.000000000000"
    );

    // Another tenant: 404, and nothing changes.
    let other = app.signup("other@example.com", "Other").await;
    let (status, body) = app
        .delete(&format!("/api/v1/prices/{id}"), &other.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    assert_eq!(
        s.chat_cost("openai/gpt-4o-mini").await.1,
        "1000.000000000000"
    );
    // Only admins and owners delete.
    let (status, invitation) = app
        .post("/api/v1/invites", &s.owner.token, json!({"role": "member"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/api/v1/invites/accept",
            &other.token,
            json!({"token": invitation["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .delete(&format!("/api/v1/prices/{id}"), &other.token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The owner deletes it: the next call is at the catalog's list price.
    let (status, body) = app
        .delete(&format!("/api/v1/prices/{id}"), &s.owner.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(s.chat_cost("openai/gpt-4o-mini").await.1, "0.150000000000");
    assert!(s.own_prices().await.is_empty());
    let (status, _) = app
        .delete(&format!("/api/v1/prices/{id}"), &s.owner.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(s);
    app.stop().await;
}
