//! Operator commands that change stored state: master-key rotation.

use flo2_store::StoredDataKey;

use crate::config::Config;
use crate::server::open_store;
use crate::{keyring, StartError};

/// How many data keys one rotation step re-wraps.
const BATCH: i64 = 100;

/// Re-wraps every organization's data key under the primary master key (`FLO2_MASTER_KEY`),
/// unwrapping with whichever configured key wrapped it. Provider-key ciphertexts are untouched,
/// and each row is swapped atomically, so running gateways keep serving throughout.
/// Returns how many data keys were re-wrapped.
pub async fn rotate_master_key(config: &Config) -> Result<u64, StartError> {
    let store = open_store(config).await?;
    let keyring = keyring::load(config)?;
    let primary = keyring.primary().id().to_string();
    let mut rotated = 0u64;
    loop {
        let batch = store.data_keys_not_wrapped_by(&primary, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let mut progressed = false;
        for (org, stored) in batch {
            let dek = keyring
                .unwrap_stored(org, &stored.key_id, stored.wrapped.clone())
                .map_err(|e| {
                    StartError::MasterKey(format!(
                        "cannot unwrap the data key of organization {org} (wrapped by master key {}): {e}; \
                         put that key in FLO2_PREVIOUS_MASTER_KEYS",
                        stored.key_id
                    ))
                })?;
            let wrapped = keyring.wrap(org, &dek)?;
            let new = StoredDataKey {
                key_id: wrapped.key_id.to_string(),
                wrapped: wrapped.blob,
            };
            if store.replace_data_key(org, &stored.key_id, &new).await? {
                rotated += 1;
                progressed = true;
            }
        }
        if !progressed {
            // Another rotation is re-wrapping the same rows; let it finish them.
            break;
        }
    }
    store.close().await;
    Ok(rotated)
}
