//! Invitations by link and role checks on every write.

use crate::common::{Account, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Invites a fresh user into `owner`'s organization with `role`; returns the new member's account
/// (its session switched to the owner's organization).
async fn join(app: &TestApp, owner: &Account, email: &str, role: &str) -> Account {
    let (status, invite) = app
        .post(
            "/api/v1/invites",
            &owner.token,
            json!({"role": role, "email": email}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let token = invite["token"].as_str().unwrap();
    assert!(invite["url"].as_str().unwrap().ends_with(token));
    let mut member = app.signup(email, &format!("{email}'s own")).await;
    let (status, joined) = app
        .post(
            "/api/v1/invites/accept",
            &member.token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["id"], owner.org.as_str());
    assert_eq!(joined["role"], role);
    member.org = owner.org.clone();
    member
}

#[tokio::test]
async fn invitations_are_single_use_and_listed_without_tokens() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let (_, invite) = app
        .post("/api/v1/invites", &owner.token, json!({"role": "member"}))
        .await;
    let token = invite["token"].as_str().unwrap().to_owned();
    let (_, listed) = app.get("/api/v1/invites", &owner.token).await;
    assert_eq!(listed[0]["status"], "pending");
    assert!(
        !listed.to_string().contains(&token),
        "tokens are shown once"
    );

    let first = app.signup("a@example.com", "A").await;
    assert_eq!(
        app.post(
            "/api/v1/invites/accept",
            &first.token,
            json!({"token": token})
        )
        .await
        .0,
        StatusCode::OK
    );
    let second = app.signup("b@example.com", "B").await;
    let (status, body) = app
        .post(
            "/api/v1/invites/accept",
            &second.token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        app.get("/api/v1/invites", &owner.token).await.1[0]["status"],
        "accepted"
    );

    // A withdrawn invitation cannot be used; nor can a made-up one.
    let (_, withdrawn) = app
        .post("/api/v1/invites", &owner.token, json!({"role": "viewer"}))
        .await;
    let id = withdrawn["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/invites/{id}"), &owner.token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let t = withdrawn["token"].as_str().unwrap();
    assert_eq!(
        app.post("/api/v1/invites/accept", &second.token, json!({"token": t}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(
            "/api/v1/invites/accept",
            &second.token,
            json!({"token": "flo2_inv_made_up"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    let (_, members) = app.get("/api/v1/members", &owner.token).await;
    let emails: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["owner@example.com", "a@example.com"]);
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let team = app.team(&owner.token, "t").await;
    let pk = app
        .provider_key(&owner.token, "openai", "p", "sk-0123456789abcdef")
        .await;
    let (key_id, _) = app.api_key(&owner.token, &team, "k").await;
    let viewer = join(&app, &owner, "viewer@example.com", "viewer").await;
    let v = viewer.token.as_str();

    for path in [
        "/api/v1/teams",
        "/api/v1/provider-keys",
        "/api/v1/api-keys",
        "/api/v1/members",
    ] {
        assert_eq!(
            app.get(path, v).await.0,
            StatusCode::OK,
            "viewer can read {path}"
        );
    }
    let (teams, pks) = ("/api/v1/teams", "/api/v1/provider-keys");
    let writes = [
        (Method::POST, teams.to_owned(), Some(json!({"name": "x"}))),
        (
            Method::PATCH,
            format!("{teams}/{team}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("{teams}/{team}"), None),
        (
            Method::POST,
            pks.to_owned(),
            Some(json!({"provider": "openai", "name": "x", "api_key": "sk-x"})),
        ),
        (
            Method::PATCH,
            format!("{pks}/{pk}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("{pks}/{pk}"), None),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "x", "team_id": team})),
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{key_id}"), None),
        (
            Method::POST,
            "/api/v1/invites".to_owned(),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/members/{}", owner.user),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::PATCH,
            "/api/v1/organization".to_owned(),
            Some(json!({"name": "x"})),
        ),
    ];
    for (method, path, body) in writes {
        let (status, answer) = app.call(method.clone(), &path, Some(v), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "forbidden", "{method} {path}");
    }
    // Nothing changed.
    assert_eq!(
        app.get("/api/v1/teams", &owner.token)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v1/provider-keys", &owner.token).await.1[0]["name"],
        "p"
    );
    assert!(app.get("/api/v1/api-keys", &owner.token).await.1[0]["revoked_at"].is_null());
    assert_eq!(
        app.get("/api/v1/organization", &owner.token).await.1["name"],
        "Acme"
    );
}

#[tokio::test]
async fn members_use_keys_admins_manage_owners_own() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let team = app.team(&owner.token, "t").await;
    let member = join(&app, &owner, "member@example.com", "member").await;
    let admin = join(&app, &owner, "admin@example.com", "admin").await;

    // Members create and revoke gateway keys, but manage nothing else.
    let (id, _) = app.api_key(&member.token, &team, "mine").await;
    assert_eq!(
        app.delete(&format!("/api/v1/api-keys/{id}"), &member.token)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/api/v1/teams", &member.token, json!({"name": "x"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Admins manage teams, keys and members, but not the owner role.
    assert_eq!(
        app.post("/api/v1/teams", &admin.token, json!({"name": "ops"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = app
        .patch(
            &format!("/api/v1/members/{}", member.user),
            &admin.token,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "viewer");
    for (what, method, path, body) in [
        (
            "promote to owner",
            Method::PATCH,
            format!("/api/v1/members/{}", member.user),
            Some(json!({"role": "owner"})),
        ),
        (
            "demote the owner",
            Method::PATCH,
            format!("/api/v1/members/{}", owner.user),
            Some(json!({"role": "member"})),
        ),
        (
            "remove the owner",
            Method::DELETE,
            format!("/api/v1/members/{}", owner.user),
            None,
        ),
        (
            "invite an owner",
            Method::POST,
            "/api/v1/invites".to_owned(),
            Some(json!({"role": "owner"})),
        ),
    ] {
        let (status, body) = app.call(method, &path, Some(&admin.token), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "admin may not {what}: {body}"
        );
    }
    // The downgraded member is now a viewer and cannot create keys.
    assert_eq!(
        app.post(
            "/api/v1/api-keys",
            &member.token,
            json!({"name": "y", "team_id": team})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // The last owner cannot step down or leave; after promoting another owner, they can.
    let (status, body) = app
        .patch(
            &format!("/api/v1/members/{}", owner.user),
            &owner.token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "last_owner");
    assert_eq!(
        app.delete(&format!("/api/v1/members/{}", owner.user), &owner.token)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/members/{}", admin.user),
            &owner.token,
            json!({"role": "owner"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/members/{}", owner.user),
            &owner.token,
            json!({"role": "admin"})
        )
        .await
        .0,
        StatusCode::OK
    );

    // Anyone may leave; a removed member loses access to the organization at once.
    assert_eq!(
        app.delete(&format!("/api/v1/members/{}", member.user), &member.token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = app.get("/api/v1/teams", &member.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "no_organization");
}

#[tokio::test]
async fn accepting_twice_into_the_same_organization_conflicts_and_keeps_the_invite() {
    let app = TestApp::start().await;
    let owner = app.signup("owner@example.com", "Acme").await;
    let (_, invite) = app
        .post("/api/v1/invites", &owner.token, json!({"role": "member"}))
        .await;
    let (status, body) = app
        .post(
            "/api/v1/invites/accept",
            &owner.token,
            json!({"token": invite["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.get("/api/v1/invites", &owner.token).await.1[0]["status"],
        "pending",
        "the failed accept rolled back"
    );
}
