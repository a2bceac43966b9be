//! Experiments in the store, on both databases: a draft is created, read back exactly, edited
//! only while a draft, moved between states by compare-and-set, never seen by another
//! organization, and a route holds at most one running experiment.

use crate::common::TestApp;
use flo2_core::experiment::{ExperimentInput, ExperimentSpec, ExperimentState};
use flo2_core::OrgId;
use flo2_store::StoreError;
use serde_json::json;

fn spec(name: &str, route: &str) -> ExperimentSpec {
    let input: ExperimentInput = serde_json::from_value(json!({
        "name": name,
        "route": route,
        "arms": [
            {"name": "A", "provider": "openai", "model": "gpt-4o-mini", "share": 50},
            {"name": "B", "provider": "anthropic", "model": "claude-haiku-4-5", "share": 50}
        ],
        "judge": {"provider": "openai", "model": "gpt-4o"},
        "sample_percent": 50,
        "judge_budget_usd_per_day": "1.25"
    }))
    .unwrap();
    input.check().unwrap()
}

async fn org(app: &TestApp, email: &str) -> OrgId {
    app.signup(email, "Experiments").await.org.parse().unwrap()
}

#[tokio::test]
async fn a_draft_reads_back_exactly_and_only_for_its_organization() {
    let app = TestApp::start().await;
    let (mine, theirs) = (
        org(&app, "a@example.com").await,
        org(&app, "b@example.com").await,
    );
    let store = app.store();
    let made = store
        .create_experiment(mine, &spec("e1", "support"))
        .await
        .unwrap();
    assert_eq!(made.state, ExperimentState::Draft);
    assert_eq!(made.spec, spec("e1", "support"));
    assert_eq!(store.experiment(mine, made.id).await.unwrap(), made);
    assert!(matches!(
        store.experiment(theirs, made.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.experiments(theirs).await.unwrap().is_empty());
    assert!(matches!(
        store.create_experiment(mine, &spec("e1", "other")).await,
        Err(StoreError::Conflict)
    ));
    // Another organization may use the same name.
    store
        .create_experiment(theirs, &spec("e1", "support"))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_experiment(theirs, made.id).await,
        Err(StoreError::NotFound)
    ));
    let edited = store
        .update_draft_experiment(mine, made.id, &spec("e1 renamed", "support"))
        .await
        .unwrap();
    assert_eq!(edited.spec.name, "e1 renamed");
    assert_eq!(store.experiments(mine).await.unwrap().len(), 1);
    store.delete_experiment(mine, made.id).await.unwrap();
    assert!(store.experiments(mine).await.unwrap().is_empty());
}

#[tokio::test]
async fn states_move_by_compare_and_set_and_a_route_runs_one_experiment() {
    let app = TestApp::start().await;
    let mine = org(&app, "c@example.com").await;
    let store = app.store();
    let first = store
        .create_experiment(mine, &spec("one", "support"))
        .await
        .unwrap();
    let second = store
        .create_experiment(mine, &spec("two", "support"))
        .await
        .unwrap();
    let elsewhere = store
        .create_experiment(mine, &spec("three", "coding"))
        .await
        .unwrap();
    use ExperimentState::*;
    assert!(store
        .set_experiment_state(mine, first.id, Draft, Running)
        .await
        .unwrap());
    // The change already happened: a second, racing request loses.
    assert!(!store
        .set_experiment_state(mine, first.id, Draft, Running)
        .await
        .unwrap());
    assert!(matches!(
        store
            .set_experiment_state(mine, second.id, Draft, Running)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(store
        .set_experiment_state(mine, elsewhere.id, Draft, Running)
        .await
        .unwrap());
    let running = store.experiment(mine, first.id).await.unwrap();
    assert_eq!(running.state, Running);
    assert!(running.started_at.is_some() && running.stopped_at.is_none());
    assert!(
        matches!(
            store
                .update_draft_experiment(mine, first.id, &spec("one", "support"))
                .await,
            Err(StoreError::NotFound)
        ),
        "a running experiment's definition is fixed"
    );
    assert!(store
        .set_experiment_state(mine, first.id, Running, Paused)
        .await
        .unwrap());
    // Paused, the route is free again.
    assert!(store
        .set_experiment_state(mine, second.id, Draft, Running)
        .await
        .unwrap());
    assert!(store
        .set_experiment_state(mine, first.id, Paused, Stopped)
        .await
        .unwrap());
    let stopped = store.experiment(mine, first.id).await.unwrap();
    assert_eq!(stopped.state, Stopped);
    assert_eq!(
        stopped.started_at, running.started_at,
        "the first start is kept"
    );
    assert!(stopped.stopped_at.is_some());
}
