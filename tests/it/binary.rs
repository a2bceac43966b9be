//! The real `flo2` executable, as a newcomer runs it: no configuration at all.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `flo2 [args]` in `dir` with a clean environment (no FLO2_* from the caller).
fn spawn(dir: &std::path::Path, port: u16, extra_env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flo2"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Only the port differs from the README's command, so tests can run in parallel.
        .env("FLO2_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

async fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if resp.status() == 200 {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("flo2 exited early with {status}: {err}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("flo2 did not become healthy in 30 s");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "flo2 did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn zero_config_start_creates_database_and_key_then_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Debug logs, so the check below that no secret is logged covers the chattiest level.
    let mut child = spawn(dir.path(), port, &[("FLO2_LOG", "debug")], &[]);
    wait_ready(port, &mut child).await;

    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(dir.path().join("data/flo2.db").exists());
    let dir_mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "the data directory is private");
    let key_file = dir.path().join("data/master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated master key is private");

    // Create a tenant so the database holds a wrapped data key.
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/signup"))
        .json(&serde_json::json!({"email": "new@example.com", "password": "a long passphrase", "organization": "Newco"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let token = resp.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    const PROVIDER_SECRET: &str = "sk-LOGS-MUST-NEVER-SHOW-THIS-0123456789";
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/provider-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"provider": "openai", "name": "p", "api_key": PROVIDER_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let status = terminate(&mut child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let mut logs = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("generated a new master key"),
        "a warning says the key was generated: {logs}"
    );
    let original = std::fs::read_to_string(&key_file).unwrap();

    // Restarting reuses the same key file.
    let port = free_port();
    let mut again = spawn(dir.path(), port, &[], &[]);
    wait_ready(port, &mut again).await;
    assert!(terminate(&mut again).success());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), original);

    // A different key must stop the start with a clear message, not serve.
    let wrong = flo2_vault::MasterKey::generate().to_base64();
    let out = Command::new(env!("CARGO_BIN_EXE_flo2"))
        .current_dir(dir.path())
        .env_clear()
        .env("FLO2_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FLO2_MASTER_KEY", &wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong master key"), "{err}");
    assert!(
        !err.contains(&wrong) && !err.contains(original.trim()),
        "no key material in the message"
    );
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_flo2"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "gateway",
        "console",
        "migrate",
        "master-key",
        "config",
    ] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_flo2"))
        .args(["master-key", "generate"])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&out.stdout);
    assert!(flo2_vault::MasterKey::from_base64(key.trim()).is_ok());
}

#[test]
fn bad_configuration_is_reported_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_flo2"))
        .env_clear()
        .env("FLO2_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLO2_LISTEN"));
}
