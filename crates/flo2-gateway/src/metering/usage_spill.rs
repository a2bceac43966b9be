//! The local files usage records wait in while the database cannot take them: the spill file
//! (appended at the end, replayed from the front, JSON lines) and, beside it, the file of records
//! the database refused. Both are created readable by flo2's user only (0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use flo2_store::UsageRecord;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

/// How usage is batched, and where and when it spills.
#[derive(Clone, Debug)]
pub struct SpillSettings {
    /// The spill file.
    pub path: PathBuf,
    /// Records held in memory before spilling starts.
    pub memory_records: usize,
    /// How long a batch gathers once its first record has arrived. Longer batches cost the
    /// database less in all, shorter ones spread its work into smaller bursts.
    pub gather: Duration,
}

/// `records` as JSON lines, the format of the spill and refused files.
fn json_lines<'r>(records: impl IntoIterator<Item = &'r UsageRecord>) -> std::io::Result<String> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    Ok(text)
}

/// Opens `path` for writing, creating it (and its directory) readable by flo2's user only:
/// usage records name organizations, keys and models. `append` or truncate.
async fn open_private(path: &Path, append: bool) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        let mut builder = tokio::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir).await?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// Appends `records` to `path` as JSON lines and syncs them to disk.
pub(crate) async fn append_lines<'r>(
    path: &Path,
    records: impl IntoIterator<Item = &'r UsageRecord>,
) -> std::io::Result<()> {
    let text = json_lines(records)?;
    let mut file = open_private(path, true).await?;
    file.write_all(text.as_bytes()).await?;
    file.sync_data().await
}

/// Where refused records go: beside the spill file, never replayed (they would be refused
/// again), kept for an operator to inspect and, once the cause is fixed, load by hand.
pub(crate) fn refused_path(spill: &Path) -> PathBuf {
    spill.with_file_name("usage-refused.jsonl")
}

/// The spill file: appended at the end, replayed from `offset`. While the database only
/// stalls, the same file serves as a journal: copies of records that are still in memory and
/// written from there, so it is removed once they are stored, never read back (unless a crash
/// leaves it behind: the next start replays whatever file it finds).
pub(crate) struct SpillFile {
    settings: SpillSettings,
    /// Bytes of the file already replayed.
    pub(crate) offset: u64,
    /// Whether the file is where records wait (new records must go behind it).
    pub(crate) active: bool,
    /// Whether the file exists as a journal only.
    journal: bool,
}

impl SpillFile {
    pub(crate) async fn open(settings: SpillSettings) -> Self {
        let active = tokio::fs::metadata(&settings.path).await.is_ok();
        if active {
            tracing::info!(path = %settings.path.display(), "replaying usage spilled by an earlier run");
        }
        Self {
            settings,
            offset: 0,
            active,
            journal: false,
        }
    }

    /// Appends records and makes the file where records wait (a journal it was becomes part
    /// of it, replayed from its start: the records in it that are already stored are skipped by
    /// id).
    pub(crate) async fn append(&mut self, records: &[UsageRecord]) -> std::io::Result<()> {
        append_lines(&self.settings.path, records).await?;
        self.active = true;
        self.journal = false;
        Ok(())
    }

    /// Appends copies of records that stay in memory (see [`SpillFile`]).
    pub(crate) async fn append_journal<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r UsageRecord>,
    ) -> std::io::Result<()> {
        append_lines(&self.settings.path, records).await?;
        if !self.active {
            self.journal = true;
        }
        Ok(())
    }

    /// Removes the journal once every record in it is stored (nothing if the file is where
    /// records wait, or there is none).
    pub(crate) async fn drop_journal(&mut self) -> std::io::Result<()> {
        if self.journal && !self.active {
            tokio::fs::remove_file(&self.settings.path).await?;
            self.journal = false;
        }
        Ok(())
    }

    /// Saves records that are older than everything in the file: they go in front of the part not
    /// yet replayed (written to a new file, then renamed over the old one, so a crash leaves one
    /// complete file or the other).
    pub(crate) async fn save_before(&mut self, older: &[UsageRecord]) -> std::io::Result<()> {
        if !self.active {
            return self.append(older).await;
        }
        let mut rest = Vec::new();
        {
            let mut file = tokio::fs::File::open(&self.settings.path).await?;
            file.seek(std::io::SeekFrom::Start(self.offset)).await?;
            tokio::io::AsyncReadExt::read_to_end(&mut file, &mut rest).await?;
        }
        let text = json_lines(older)?;
        let tmp = self.settings.path.with_extension("tmp");
        let mut file = open_private(&tmp, false).await?;
        file.write_all(text.as_bytes()).await?;
        file.write_all(&rest).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &self.settings.path).await?;
        self.offset = 0;
        Ok(())
    }

    /// Up to `max` records from the replay position, and the position after them.
    pub(crate) async fn read(&self, max: usize) -> std::io::Result<(Vec<UsageRecord>, u64)> {
        let mut file = tokio::fs::File::open(&self.settings.path).await?;
        file.seek(std::io::SeekFrom::Start(self.offset)).await?;
        let mut reader = BufReader::new(file);
        let mut out = Vec::new();
        let mut offset = self.offset;
        let mut line = String::new();
        while out.len() < max {
            line.clear();
            let n = reader.read_line(&mut line).await?;
            if n == 0 || !line.ends_with('\n') {
                break; // end, or a line still being written (never, single writer) / torn by a crash
            }
            offset += n as u64;
            match serde_json::from_str(line.trim_end()) {
                Ok(r) => out.push(r),
                Err(err) => {
                    tracing::error!(error = %err, "skipping an unreadable spilled usage line")
                }
            }
        }
        Ok((out, offset))
    }

    pub(crate) async fn finish_if_drained(&mut self) -> std::io::Result<()> {
        let len = tokio::fs::metadata(&self.settings.path).await?.len();
        if self.offset >= len {
            tokio::fs::remove_file(&self.settings.path).await?;
            self.offset = 0;
            self.active = false;
            tracing::info!("spilled usage fully replayed");
        }
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_spill_and_refused_files_and_their_directory_are_private() {
        let dir = std::env::temp_dir().join(format!(
            "flo2-spill-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let spill_path = dir.join("spill").join("usage-spill.jsonl");
        let mut spill = SpillFile::open(SpillSettings {
            path: spill_path.clone(),
            memory_records: 1,
            gather: std::time::Duration::from_millis(10),
        })
        .await;
        spill.append(&[]).await.unwrap();
        assert_eq!(mode(&spill_path), 0o600);
        assert_eq!(mode(spill_path.parent().unwrap()), 0o700);
        // Rewritten through a temporary file when older records go in front.
        spill.save_before(&[]).await.unwrap();
        assert_eq!(mode(&spill_path), 0o600);
        let refused = refused_path(&spill_path);
        append_lines(&refused, std::iter::empty()).await.unwrap();
        assert_eq!(mode(&refused), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
