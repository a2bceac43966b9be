//! The vault end to end: what the gateway decrypts, what tampering does, master-key rotation and
//! refusing to start with the wrong key.


use std::sync::Arc;

use crate::common;
use crate::common::{exec_sql, TestApp};
use flo2::Mode;
use flo2_gateway::org_cache::OrgCache;
use flo2_vault::{MasterKey, MasterKeyring};

const SECRET_A: &str = "sk-ant-AAAAAAAAAAAAAAAAAAAA-1111";
const SECRET_B: &str = "gsk_BBBBBBBBBBBBBBBBBBBBBBBB-2222";

fn keyring(b64: &str) -> Arc<MasterKeyring> {
    Arc::new(MasterKeyring::new(MasterKey::from_base64(b64).unwrap()))
}

#[tokio::test]
async fn provider_keys_round_trip_into_the_gateway() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    app.provider_key(&a.token, "anthropic", "a-main", SECRET_A)
        .await;
    let cache = OrgCache::new(app.store().clone(), keyring(&app.key), 10);
    let config = cache.get(a.org.parse().unwrap()).await.unwrap();
    assert_eq!(config.credentials.len(), 1);
    assert_eq!(config.credentials[0].secret.expose(), SECRET_A);
    assert!(
        !format!("{:?}", config.credentials[0]).contains(SECRET_A),
        "debug output redacts"
    );
}

#[tokio::test]
async fn ciphertext_moved_to_another_row_or_tenant_does_not_decrypt() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let b = app.signup("b@example.com", "B").await;
    app.provider_key(&a.token, "anthropic", "a-main", SECRET_A)
        .await;
    app.provider_key(&a.token, "groq", "a-second", SECRET_B)
        .await;
    app.provider_key(&b.token, "openai", "b-main", "sk-bbbbbbbbbbbbbbbbbbbbbbbb")
        .await;

    // Another row of the same organization.
    let moved = exec_sql(
        &app.db,
        "UPDATE provider_credentials SET ciphertext = (SELECT ciphertext FROM provider_credentials WHERE name = 'a-main') WHERE name = 'a-second'",
    )
    .await;
    assert_eq!(moved, 1);
    // A row of another organization.
    exec_sql(
        &app.db,
        "UPDATE provider_credentials SET ciphertext = (SELECT ciphertext FROM provider_credentials WHERE name = 'a-main') WHERE name = 'b-main'",
    )
    .await;

    let cache = OrgCache::new(app.store().clone(), keyring(&app.key), 10);
    let config_a = cache.get(a.org.parse().unwrap()).await.unwrap();
    let names: Vec<&str> = config_a
        .credentials
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a-main"],
        "the moved ciphertext fails authentication and is skipped"
    );
    let config_b = cache.get(b.org.parse().unwrap()).await.unwrap();
    assert!(config_b.credentials.is_empty());

    // The same holds on the data plane: the broken credentials' providers are not offered.
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    let ids = app.model_ids(&key).await;
    assert!(ids.iter().any(|m| m.starts_with("anthropic/")));
    assert!(!ids.iter().any(|m| m.starts_with("groq/")), "{ids:?}");
}

#[tokio::test]
async fn a_data_key_moved_to_another_organization_does_not_unwrap() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let b = app.signup("b@example.com", "B").await;
    app.provider_key(&b.token, "openai", "b-main", "sk-bbbbbbbbbbbbbbbbbbbbbbbb")
        .await;
    let org_a = a.org.as_str();
    exec_sql(
        &app.db,
        &format!("UPDATE organizations SET dek_wrapped = (SELECT dek_wrapped FROM organizations WHERE name = 'A') WHERE name = 'B' AND id <> '{org_a}'"),
    )
    .await;
    let cache = OrgCache::new(app.store().clone(), keyring(&app.key), 10);
    assert!(cache
        .get(b.org.parse().unwrap())
        .await
        .unwrap()
        .credentials
        .is_empty());
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_secret_readable() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let b = app.signup("b@example.com", "B").await;
    app.provider_key(&a.token, "anthropic", "a-main", SECRET_A)
        .await;
    app.provider_key(&b.token, "groq", "b-main", SECRET_B).await;
    let team = app.team(&a.token, "t").await;
    let (_, gateway_key) = app.api_key(&a.token, &team, "k").await;
    let ciphertext_before = app
        .store()
        .credentials(a.org.parse().unwrap())
        .await
        .unwrap()[0]
        .ciphertext
        .clone();
    let (db, old_key) = app.stop().await;

    // Step 2 of the procedure: new key primary, old key still accepted. Step 3: rotate.
    let new_key = common::master_key();
    let mut rotating = common::config(&db, &new_key);
    rotating.previous_master_keys = vec![flo2_core::Secret::new(old_key.clone())];
    assert_eq!(flo2::admin::rotate_master_key(&rotating).await.unwrap(), 2);
    assert_eq!(
        flo2::admin::rotate_master_key(&rotating).await.unwrap(),
        0,
        "idempotent"
    );

    // Step 4: only the new key. Every secret still decrypts; no credential was re-encrypted.
    let app = TestApp::start_on(db, new_key.clone(), Mode::Serve).await;
    let ids = app.model_ids(&gateway_key).await;
    assert!(ids.iter().any(|m| m.starts_with("anthropic/")), "{ids:?}");
    let cache = OrgCache::new(app.store().clone(), keyring(&new_key), 10);
    assert_eq!(
        cache.get(a.org.parse().unwrap()).await.unwrap().credentials[0]
            .secret
            .expose(),
        SECRET_A
    );
    assert_eq!(
        cache.get(b.org.parse().unwrap()).await.unwrap().credentials[0]
            .secret
            .expose(),
        SECRET_B
    );
    let ciphertext_after = app
        .store()
        .credentials(a.org.parse().unwrap())
        .await
        .unwrap()[0]
        .ciphertext
        .clone();
    assert_eq!(ciphertext_before, ciphertext_after);
    let in_use = app.store().master_key_ids_in_use().await.unwrap();
    assert_eq!(
        in_use,
        [MasterKey::from_base64(&new_key).unwrap().id().to_string()]
    );
    let (db, _) = app.stop().await;

    // The old key alone no longer opens this database.
    let err = flo2::start(&common::config(&db, &old_key), Mode::Serve)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("wrong master key"), "{err}");
}

#[tokio::test]
async fn rotation_without_the_old_key_fails_clearly_and_changes_nothing() {
    let app = TestApp::start().await;
    app.signup("a@example.com", "A").await;
    let (db, old_key) = app.stop().await;
    let err = flo2::admin::rotate_master_key(&common::config(&db, &common::master_key()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("FLO2_PREVIOUS_MASTER_KEYS"),
        "{err}"
    );
    // Still readable with the original key.
    let app = TestApp::start_on(db, old_key, Mode::Serve).await;
    app.stop().await;
}

#[tokio::test]
async fn starting_with_a_wrong_master_key_fails_with_a_clear_message() {
    let app = TestApp::start().await;
    app.signup("a@example.com", "A").await;
    let (db, right) = app.stop().await;
    let err = flo2::start(&common::config(&db, &common::master_key()), Mode::Serve)
        .await
        .err()
        .expect("must refuse");
    let message = err.to_string();
    assert!(
        message.contains("wrong master key") && message.contains("FLO2_MASTER_KEY"),
        "{message}"
    );
    assert!(
        !message.contains(&right),
        "the message names key fingerprints, never keys"
    );
    let err = flo2::start(&common::config(&db, "not base64!"), Mode::Serve)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("FLO2_MASTER_KEY"), "{err}");
}

#[tokio::test]
async fn rotation_runs_while_the_server_keeps_serving() {
    let app = TestApp::start().await;
    let main = app.signup("main@example.com", "Main").await;
    let team = app.team(&main.token, "t").await;
    let (_, gateway_key) = app.api_key(&main.token, &team, "k").await;
    for i in 0..12 {
        let other = app
            .signup(&format!("o{i}@example.com"), &format!("Other {i}"))
            .await;
        app.provider_key(&other.token, "openai", "p", "sk-0123456789abcdef")
            .await;
    }
    let (db, old_key) = app.stop().await;

    // Step 2: the server runs with the new key primary and the old one still accepted.
    let new_key = common::master_key();
    let mut config = common::config(&db, &new_key);
    config.previous_master_keys = vec![flo2_core::Secret::new(old_key)];
    let server = flo2::start(&config, Mode::Serve).await.unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();

    // Step 3 runs while the console encrypts new provider keys (unwrapping the data key, old- or
    // new-wrapped) and the gateway decrypts them.
    let traffic = async {
        for i in 0..15 {
            let resp = http
                .post(format!("{base}/api/v1/provider-keys"))
                .bearer_auth(&main.token)
                .json(&serde_json::json!({"provider": "groq", "name": format!("g{i}"), "api_key": "gsk_0123456789abcdef"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
            let resp = http
                .get(format!("{base}/v1/models"))
                .bearer_auth(&gateway_key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert!(body.to_string().contains("groq/"), "{body}");
        }
    };
    let (rotated, ()) = tokio::join!(flo2::admin::rotate_master_key(&config), traffic);
    assert_eq!(rotated.unwrap(), 13);
    server.shutdown().await;

    // Step 4: the new key alone reads everything, including keys added mid-rotation.
    let app = TestApp::start_on(db, new_key.clone(), Mode::Serve).await;
    let cache = OrgCache::new(app.store().clone(), keyring(&new_key), 10);
    let config = cache.get(main.org.parse().unwrap()).await.unwrap();
    assert_eq!(config.credentials.len(), 15);
    assert!(config
        .credentials
        .iter()
        .all(|c| c.secret.expose() == "gsk_0123456789abcdef"));
}
