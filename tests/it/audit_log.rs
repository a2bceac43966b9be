//! The audit log over real HTTP, on both databases: every control-plane change is recorded with
//! its actor, target and client address; no secret ever appears in it; each organization sees
//! only its own entries; only admins and owners read it; pages and filters are exact.

use std::collections::HashSet;

use crate::common::{Account, TestApp, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every entry of the caller's organization (one page of up to 500), and the raw answer text.
async fn whole_log(app: &TestApp, token: &str) -> (Vec<Value>, String) {
    let resp = app
        .http
        .get(app.url("/api/v1/audit-log?limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["next_cursor"].is_null(), "{body}");
    (body["entries"].as_array().unwrap().clone(), text)
}

/// The one entry with `action` and `target_id`; panics unless there is exactly one.
fn entry<'a>(log: &'a [Value], action: &str, target: &str) -> &'a Value {
    let found: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == action && e["target_id"] == target)
        .collect();
    assert_eq!(found.len(), 1, "{action} on {target}: {log:#?}");
    found[0]
}

/// Checks who made the change and from where.
fn by(e: &Value, who: &Account) {
    assert_eq!(e["actor"]["id"], who.user.as_str(), "{e}");
    assert!(e["actor"]["email"].as_str().unwrap().contains('@'), "{e}");
    assert_eq!(e["client_address"], "127.0.0.1", "{e}");
    assert!(
        e["id"].as_str().is_some() && e["time"].as_str().is_some(),
        "{e}"
    );
}

async fn invite(app: &TestApp, token: &str, role: &str) -> (String, String) {
    let (status, body) = app
        .post("/api/v1/invites", token, json!({"role": role}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

/// Signs `email` up in an organization of their own, then into `token`'s organization by an
/// invitation with `role`; the returned account works in the invited organization.
async fn join(app: &TestApp, inviter: &str, email: &str, role: &str) -> (Account, String) {
    let own = app.signup(email, &format!("{email} own")).await;
    let (_, invitation) = invite(app, inviter, role).await;
    let (status, body) = app
        .post(
            "/api/v1/invites/accept",
            &own.token,
            json!({"token": invitation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let account = Account {
        org: body["id"].as_str().unwrap().to_owned(),
        ..own
    };
    (account, invitation)
}

#[tokio::test]
async fn every_change_is_recorded_with_actor_target_and_address_and_never_a_secret() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned(), owner.token.clone()];

    // Teams.
    let team = app.team(&owner.token, "backend").await;
    let (s, _) = app
        .patch(
            &format!("/api/v1/teams/{team}"),
            &owner.token,
            json!({"name": "platform"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Provider keys: created, renamed, rotated, deleted.
    let provider_secret = "sk-audit-provider-secret-0123456789";
    let rotated_secret = "sk-audit-rotated-secret-9876543210";
    secrets.extend([provider_secret.to_owned(), rotated_secret.to_owned()]);
    let pk = app
        .provider_key(&owner.token, "openai", "prod", provider_secret)
        .await;
    let (s, _) = app
        .patch(
            &format!("/api/v1/provider-keys/{pk}"),
            &owner.token,
            json!({"name": "production"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .patch(
            &format!("/api/v1/provider-keys/{pk}"),
            &owner.token,
            json!({"api_key": rotated_secret}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let pk2 = app
        .provider_key(
            &owner.token,
            "groq",
            "spare",
            "gsk-audit-spare-secret-000111",
        )
        .await;
    secrets.push("gsk-audit-spare-secret-000111".to_owned());
    let (s, _) = app
        .delete(&format!("/api/v1/provider-keys/{pk2}"), &owner.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Gateway keys: created and revoked.
    let (key_id, key_secret) = app.api_key(&owner.token, &team, "web").await;
    secrets.push(key_secret.clone());
    let (s, _) = app
        .delete(&format!("/api/v1/api-keys/{key_id}"), &owner.token)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Invitations: one revoked, one accepted by a new member; roles changed.
    let (revoked_invite, revoked_token) = invite(&app, &owner.token, "viewer").await;
    secrets.push(revoked_token);
    let (s, _) = app
        .delete(&format!("/api/v1/invites/{revoked_invite}"), &owner.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (member, member_invite) = join(&app, &owner.token, "member@example.com", "member").await;
    secrets.extend([member_invite, member.token.clone()]);
    let (s, _) = app
        .patch(
            &format!("/api/v1/members/{}", member.user),
            &owner.token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .patch(
            &format!("/api/v1/members/{}", member.user),
            &owner.token,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // The member creates a gateway key, then is removed: the entry says what became of it.
    let (member_key, member_secret) = app.api_key(&member.token, &team, "member-key").await;
    secrets.push(member_secret.clone());
    let (s, _) = app
        .delete(&format!("/api/v1/members/{}", member.user), &owner.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Today a removed member's keys stay active (they belong to the team): the key still works.
    assert_eq!(app.models(&member_secret).await.0, StatusCode::OK);

    // Prices and routes.
    let (s, price) = app
        .post(
            "/api/v1/prices",
            &owner.token,
            json!({"provider": "openai", "model": "custom-x", "input_per_mtok": "1", "output_per_mtok": "2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{price}");
    let price_id = price["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .delete(&format!("/api/v1/prices/{price_id}"), &owner.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let route = json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]});
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let (s, body) = app
            .call(
                Method::PUT,
                "/api/v1/routes/chat",
                Some(&owner.token),
                Some(route.clone()),
            )
            .await;
        assert_eq!(s, expected, "{body}");
    }
    let (s, _) = app.delete("/api/v1/routes/chat", &owner.token).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Organization settings, and a team deleted with its keys.
    let (s, _) = app
        .patch(
            "/api/v1/organization",
            &owner.token,
            json!({"name": "Acme Corp"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .delete(&format!("/api/v1/teams/{team}"), &owner.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Logins refused by the throttle are recorded for the account's organization.
    let mut throttled = false;
    for _ in 0..8 {
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(json!({"email": "owner@example.com", "password": "wrong password!"})),
            )
            .await;
        throttled |= s == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(throttled);

    let (log, text) = whole_log(&app, &owner.token).await;
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the audit log"
        );
    }

    let e = entry(&log, "account.signed_up", &owner.user);
    by(e, &owner);
    assert_eq!(e["target_type"], "user");
    by(entry(&log, "team.created", &team), &owner);
    let e = entry(&log, "team.renamed", &team);
    by(e, &owner);
    assert_eq!(e["details"]["from"], "backend");
    assert_eq!(e["details"]["to"], "platform");
    let e = entry(&log, "provider_key.created", &pk);
    by(e, &owner);
    assert_eq!(e["target_type"], "provider_key");
    assert_eq!(e["details"]["hint"], "…6789");
    by(entry(&log, "provider_key.updated", &pk), &owner);
    let e = entry(&log, "provider_key.rotated", &pk);
    by(e, &owner);
    assert_eq!(e["details"]["hint"], "…3210");
    assert_eq!(e["details"]["previous_hint"], "…6789");
    by(entry(&log, "provider_key.deleted", &pk2), &owner);
    let e = entry(&log, "api_key.created", &key_id);
    by(e, &owner);
    assert!(e["details"]["hint"].as_str().unwrap().starts_with("flo2_"));
    by(entry(&log, "api_key.revoked", &key_id), &owner);
    by(entry(&log, "invitation.created", &revoked_invite), &owner);
    by(entry(&log, "invitation.revoked", &revoked_invite), &owner);
    let e = entry(&log, "invitation.accepted", &member.user);
    by(e, &member);
    assert_eq!(e["details"]["role"], "member");
    let changes: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "member.role_changed")
        .collect();
    assert_eq!(changes.len(), 2);
    by(changes[0], &owner);
    assert_eq!(changes[0]["target_id"], member.user.as_str());
    assert_eq!(changes[0]["details"]["from"], "admin");
    assert_eq!(changes[0]["details"]["to"], "member");
    by(entry(&log, "api_key.created", &member_key), &member);
    let e = entry(&log, "member.removed", &member.user);
    by(e, &owner);
    assert_eq!(e["details"]["api_keys_policy"], "kept_active");
    let kept = e["details"]["api_keys_created"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{e}");
    assert_eq!(kept[0]["id"], member_key.as_str());
    assert_eq!(kept[0]["status"], "active");
    assert!(kept[0]["hint"].as_str().unwrap().starts_with("flo2_"));
    let e = entry(&log, "price.set", &price_id);
    by(e, &owner);
    assert_eq!(e["details"]["model"], "custom-x");
    let e = entry(&log, "price.deleted", &price_id);
    by(e, &owner);
    assert_eq!(e["details"]["model"], "custom-x");
    by(entry(&log, "route.created", "chat"), &owner);
    by(entry(&log, "route.updated", "chat"), &owner);
    by(entry(&log, "route.deleted", "chat"), &owner);
    let e = entry(&log, "organization.renamed", &owner.org);
    by(e, &owner);
    assert_eq!(e["details"]["to"], "Acme Corp");
    let e = entry(&log, "team.deleted", &team);
    by(e, &owner);
    assert_eq!(
        e["details"]["api_keys_deleted"].as_array().unwrap().len(),
        2
    );
    let e = entry(&log, "login.throttled", &owner.user);
    assert!(e["actor"]["id"].is_null(), "nobody signed in: {e}");
    assert_eq!(e["client_address"], "127.0.0.1");
    assert_eq!(e["details"]["email"], "owner@example.com");

    // Newest first.
    let times: Vec<&str> = log.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        times
            .iter()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
            .collect::<Vec<_>>(),
        sorted
            .iter()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
            .collect::<Vec<_>>()
    );

    // A new organization starts its own log, with its creation.
    let (s, created) = app
        .post(
            "/api/v1/organizations",
            &owner.token,
            json!({"name": "Second"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let second = created["id"].as_str().unwrap();
    let (s, _) = app
        .post(
            "/api/v1/session/organization",
            &owner.token,
            json!({"organization_id": second}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (log, _) = whole_log(&app, &owner.token).await;
    by(entry(&log, "organization.created", second), &owner);
    // Each organization has its own log: the earlier entries are not in this one.
    assert!(log.iter().all(|e| e["action"] != "login.throttled"));
}

#[tokio::test]
async fn failed_changes_are_not_recorded() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let team = app.team(&owner.token, "t").await;
    // A duplicate, a bad value, an unknown id: nothing changed, nothing recorded.
    let (s, _) = app
        .post("/api/v1/teams", &owner.token, json!({"name": "t"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .post(
            "/api/v1/prices",
            &owner.token,
            json!({"provider": "openai", "model": "m", "input_per_mtok": "x", "output_per_mtok": "1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .delete(
            "/api/v1/api-keys/0190b4c2-0000-7000-8000-000000000000",
            &owner.token,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A price that conflicts, a price deleted by another tenant or twice: the write and its
    // entry share a transaction, so neither happens.
    let price = json!({"provider": "openai", "model": "m", "input_per_mtok": "1", "output_per_mtok": "1", "effective_from": "2020-01-01T00:00:00Z"});
    let (s, created) = app
        .post("/api/v1/prices", &owner.token, price.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.post("/api/v1/prices", &owner.token, price).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let other = app.signup("other@example.com", "Other").await;
    let path = format!("/api/v1/prices/{}", created["id"].as_str().unwrap());
    let (s, _) = app.delete(&path, &other.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&path, &owner.token).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.delete(&path, &owner.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (log, _) = whole_log(&app, &owner.token).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "price.deleted",
            "price.set",
            "team.created",
            "account.signed_up"
        ],
        "{team}"
    );
    let (other_log, _) = whole_log(&app, &other.token).await;
    assert_eq!(other_log.len(), 1, "only its sign-up: {other_log:#?}");
}

#[tokio::test]
async fn three_organizations_see_only_their_own_entries() {
    let app = TestApp::start().await;
    let mut accounts = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let account = app
            .signup(&format!("{name}@example.com"), &format!("Org {name}"))
            .await;
        for t in 0..=i {
            app.team(&account.token, &format!("{name}-team-{t}")).await;
        }
        accounts.push(account);
    }
    let mut seen_ids = HashSet::new();
    for (i, account) in accounts.iter().enumerate() {
        let (log, _) = whole_log(&app, &account.token).await;
        // Its sign-up and its own teams, nothing else.
        assert_eq!(log.len(), 2 + i, "{log:#?}");
        for e in &log {
            assert_eq!(e["actor"]["id"], account.user.as_str(), "{e}");
            assert!(seen_ids.insert(e["id"].as_str().unwrap().to_owned()));
            if e["action"] == "team.created" {
                assert!(e["details"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{}-team", ["a", "b", "c"][i])));
            }
        }
        // Another tenant's user id as the actor filter gives nothing.
        let other = &accounts[(i + 1) % accounts.len().max(1)];
        if other.user != account.user {
            let (s, body) = app
                .get(
                    &format!("/api/v1/audit-log?actor={}", other.user),
                    &account.token,
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(body["entries"], json!([]), "{body}");
        }
    }
    // A cursor taken from another organization's page gives nothing of that organization.
    let (_, page) = app
        .get("/api/v1/audit-log?limit=1", &accounts[2].token)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (s, body) = app
        .get(
            &format!("/api/v1/audit-log?cursor={cursor}"),
            &accounts[0].token,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for e in body["entries"].as_array().unwrap() {
        assert_eq!(e["actor"]["id"], accounts[0].user.as_str(), "{e}");
    }
}

#[tokio::test]
async fn only_admins_and_owners_read_the_log() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    for role in ["viewer", "member"] {
        let (account, _) = join(&app, &owner.token, &format!("{role}@example.com"), role).await;
        let (s, body) = app.get("/api/v1/audit-log", &account.token).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}: {body}");
        assert_eq!(body["code"], "forbidden");
    }
    let (admin, _) = join(&app, &owner.token, "admin@example.com", "admin").await;
    let (s, body) = app.get("/api/v1/audit-log", &admin.token).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = app.call(Method::GET, "/api/v1/audit-log", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A member who leaves is recorded as leaving, by themselves.
    let (s, _) = app
        .delete(&format!("/api/v1/members/{}", admin.user), &admin.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (log, _) = whole_log(&app, &owner.token).await;
    let e = entry(&log, "member.left", &admin.user);
    by(e, &admin);
    assert_eq!(e["details"]["role"], "admin");
    // And can no longer read the log.
    let (s, _) = app.get("/api/v1/audit-log", &admin.token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_walk_every_entry_once_and_filters_select() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let (admin, _) = join(&app, &owner.token, "admin@example.com", "admin").await;
    for i in 0..12 {
        app.team(&owner.token, &format!("o{i}")).await;
    }
    let middle = chrono::Utc::now();
    for i in 0..9 {
        app.team(&admin.token, &format!("a{i}")).await;
    }
    let (all, _) = whole_log(&app, &owner.token).await;
    // Sign-up, invitation created and accepted, 21 teams.
    assert_eq!(all.len(), 24);

    for limit in [1, 5, 7, 24, 500] {
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/audit-log?limit={limit}&cursor={c}"),
                None => format!("/api/v1/audit-log?limit={limit}"),
            };
            let (s, body) = app.get(&path, &owner.token).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            let entries = body["entries"].as_array().unwrap();
            assert!(entries.len() <= limit);
            walked.extend(entries.iter().map(|e| e["id"].clone()));
            match body["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(entries.len(), limit);
                    cursor = Some(c.to_owned());
                }
                None => break,
            }
        }
        let expected: Vec<Value> = all.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(walked, expected, "limit {limit}");
    }
    let (s, body) = app.get("/api/v1/audit-log", &owner.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["entries"].as_array().unwrap().len(), 24, "default 50");

    let count = |body: &Value| body["entries"].as_array().unwrap().len();
    let (_, body) = app
        .get("/api/v1/audit-log?action=team.created", &owner.token)
        .await;
    assert_eq!(count(&body), 21);
    let (_, body) = app
        .get(
            &format!("/api/v1/audit-log?action=team.created&actor={}", admin.user),
            &owner.token,
        )
        .await;
    assert_eq!(count(&body), 9);
    let from = middle.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, body) = app
        .get(
            &format!("/api/v1/audit-log?from={}", urlencode(&from)),
            &owner.token,
        )
        .await;
    assert_eq!(count(&body), 9, "{body}");
    let (_, body) = app
        .get(
            &format!("/api/v1/audit-log?to={}", urlencode(&from)),
            &owner.token,
        )
        .await;
    assert_eq!(count(&body), 15, "{body}");
    let (_, body) = app
        .get("/api/v1/audit-log?action=nothing.like.this", &owner.token)
        .await;
    assert_eq!(count(&body), 0);

    for bad in [
        "limit=0",
        "limit=501",
        "cursor=garbage",
        "from=yesterday",
        "actor=nobody",
    ] {
        let (s, body) = app
            .get(&format!("/api/v1/audit-log?{bad}"), &owner.token)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_field", "{bad}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// The README lists every action the log records, so scripts know the names to filter on.
#[test]
fn the_readme_lists_every_action() {
    let readme = include_str!("../../README.md");
    for action in flo2_console::audit::ACTIONS {
        assert!(
            readme.contains(&format!("`{action}`")),
            "{action} is not in the README"
        );
    }
}
