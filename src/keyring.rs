//! Loading the master keyring and checking it against the database before anything is served.

use std::io::Write;
use std::path::Path;

use flo2_store::Store;
use flo2_vault::{MasterKey, MasterKeyring};

use crate::config::Config;
use crate::StartError;

/// Builds the keyring from the configuration. With SQLite and no key configured, the key is read
/// from (or generated into) `<data_dir>/master.key`.
pub fn load(config: &Config) -> Result<MasterKeyring, StartError> {
    let primary = if let Some(key) = &config.master_key {
        MasterKey::from_base64(key.expose())
            .map_err(|e| StartError::MasterKey(format!("FLO2_MASTER_KEY: {e}")))?
    } else if let Some(path) = &config.master_key_file {
        read_key_file(path)?
    } else if config.uses_sqlite() {
        embedded_key(&config.data_dir.join("master.key"))?
    } else {
        return Err(StartError::MasterKey(
            "FLO2_MASTER_KEY (or FLO2_MASTER_KEY_FILE) is required with PostgreSQL, so that every \
             replica uses the same key; create one with `flo2 master-key generate`"
                .into(),
        ));
    };
    let previous = config
        .previous_master_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            MasterKey::from_base64(k.expose()).map_err(|e| {
                StartError::MasterKey(format!("FLO2_PREVIOUS_MASTER_KEYS entry {}: {e}", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MasterKeyring::new(primary).with_previous(previous))
}

fn read_key_file(path: &Path) -> Result<MasterKey, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StartError::MasterKey(format!(
            "cannot read master key file {}: {e}",
            path.display()
        ))
    })?;
    MasterKey::from_base64(&text)
        .map_err(|e| StartError::MasterKey(format!("master key file {}: {e}", path.display())))
}

fn embedded_key(path: &Path) -> Result<MasterKey, StartError> {
    if path.exists() {
        return read_key_file(path);
    }
    let key = MasterKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        StartError::MasterKey(format!(
            "cannot create master key file {}: {e}",
            path.display()
        ))
    })?;
    file.write_all(key.to_base64().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            StartError::MasterKey(format!(
                "cannot write master key file {}: {e}",
                path.display()
            ))
        })?;
    tracing::warn!(
        path = %path.display(),
        "generated a new master key: it encrypts every provider key in this database, so back it up \
         and keep it private; set FLO2_MASTER_KEY for production"
    );
    Ok(key)
}

/// Refuses to start when the database holds data keys wrapped by a master key the keyring lacks:
/// serving would fail on every provider key, and a silently generated new key would hide that.
pub async fn check_against(store: &Store, keyring: &MasterKeyring) -> Result<(), StartError> {
    let in_use = store.master_key_ids_in_use().await?;
    let missing: Vec<&String> = in_use
        .iter()
        .filter(|id| {
            flo2_vault::MasterKeyId::parse(id)
                .and_then(|id| keyring.get(id))
                .is_none()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StartError::MasterKey(format!(
        "wrong master key: this database's secrets are encrypted under master key {} but the configured \
         key is {}. Set FLO2_MASTER_KEY to the key this database was created with (during a rotation, \
         put the old key in FLO2_PREVIOUS_MASTER_KEYS)",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        keyring.primary().id()
    )))
}
