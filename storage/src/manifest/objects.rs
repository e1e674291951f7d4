//! Reading and writing the manifest's objects: changes, checkpoints, the hint.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{CHECKPOINT_EVERY, Checkpoint, Delta, FORMAT, LiveFile, Manifest};
use crate::layout::{self, FileKey, ManifestObject, Table};
use crate::{Error, Result};

#[derive(Debug)]
pub(super) struct Objects {
    store: Arc<dyn ObjectStore>,
}

fn store_err<'k>(op: &'static str, key: &'k Path) -> impl FnOnce(object_store::Error) -> Error + 'k {
    move |source| Error::ObjectStore {
        op,
        key: key.to_string(),
        source,
    }
}

impl Objects {
    pub(super) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// GETs a JSON object; `None` if it does not exist.
    async fn read<T: DeserializeOwned>(&self, key: &Path) -> Result<Option<T>> {
        let bytes = match self.store.get(key).await {
            Ok(r) => r.bytes().await.map_err(store_err("read manifest", key))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_err("read manifest", key)(e)),
        };
        // Refuse a newer format with a reason rather than misread it.
        #[derive(serde::Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidData {
            reason: format!("manifest object {key} is not valid: {e}"),
        })?;
        if format.format > FORMAT {
            return Err(Error::InvalidData {
                reason: format!(
                    "manifest object {key} has format {}, this build reads up to {FORMAT}; upgrade Tributary",
                    format.format
                ),
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::InvalidData {
                reason: format!("manifest object {key} is not valid: {e}"),
            })
    }

    async fn read_delta(&self, version: u64) -> Result<Option<Delta>> {
        self.read(&layout::manifest_path(version)).await
    }

    async fn read_checkpoint(&self, version: u64) -> Result<Option<Manifest>> {
        Ok(self
            .read::<Checkpoint>(&layout::checkpoint_path(version))
            .await?
            .map(Manifest::from_checkpoint))
    }

    async fn read_hint(&self) -> Result<Option<u64>> {
        let key = layout::last_checkpoint_path();
        match self.store.get(&key).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(store_err("read manifest hint", &key))?;
                Ok(std::str::from_utf8(&bytes).ok().and_then(|s| s.trim().parse().ok()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err("read manifest hint", &key)(e)),
        }
    }

    /// The newest state: forward from `known`, unless the hint names a newer checkpoint (or
    /// nothing is known), which is then the starting point.
    pub(super) async fn load(&self, known: Option<&Manifest>) -> Result<Manifest> {
        let hint = self.read_hint().await?;
        let base = match (known, hint) {
            (Some(k), h) if h.is_none_or(|h| h <= k.version) => k.clone(),
            (_, Some(h)) => match self.read_checkpoint(h).await? {
                Some(c) => c,
                None => self.load_by_listing().await?,
            },
            (None, None) => self.load_by_listing().await?,
            // A known state with no hint is taken by the first arm.
            (Some(k), None) => k.clone(),
        };
        self.forward(base).await
    }

    /// `m` with every later change applied, up to the first missing version.
    pub(super) async fn forward(&self, mut m: Manifest) -> Result<Manifest> {
        while let Some(d) = self.read_delta(m.version + 1).await? {
            m.apply(&d);
        }
        Ok(m)
    }

    /// The newest checkpoint a listing finds, or the empty state when the changes start at 1.
    async fn load_by_listing(&self) -> Result<Manifest> {
        let objects = self.list().await?;
        let newest = objects
            .iter()
            .filter_map(|(o, _)| match o {
                ManifestObject::Checkpoint(v) => Some(*v),
                ManifestObject::Delta(_) => None,
            })
            .max();
        if let Some(c) = newest
            && let Some(m) = self.read_checkpoint(c).await?
        {
            return Ok(m);
        }
        let first = objects.iter().find_map(|(o, _)| match o {
            ManifestObject::Delta(v) => Some(*v),
            ManifestObject::Checkpoint(_) => None,
        });
        match first {
            None | Some(1) => Ok(Manifest::default()),
            Some(v) => Err(Error::InvalidData {
                reason: format!("the manifest's changes start at version {v} and no checkpoint precedes them"),
            }),
        }
    }

    /// Every manifest object, in version order.
    async fn list(&self) -> Result<Vec<(ManifestObject, Path)>> {
        let prefix = layout::manifest_prefix();
        let mut out: Vec<(ManifestObject, Path)> = self
            .store
            .list(Some(&prefix))
            .try_collect::<Vec<_>>()
            .await
            .map_err(store_err("list manifest", &prefix))?
            .into_iter()
            .filter_map(|o| layout::parse_manifest_path(&o.location).map(|v| (v, o.location)))
            .collect();
        out.sort_unstable_by_key(|(o, _)| *o);
        Ok(out)
    }

    /// Creates change `d`; true when it is ours, false when another writer created that version.
    /// A lost answer is read back (`store::create_once`; the commit id makes the bytes unique),
    /// and only an unknown outcome is an error ([`Error::CommitUncertain`]).
    pub(super) async fn create(&self, d: &Delta) -> Result<bool> {
        let key = layout::manifest_path(d.version);
        let body = Bytes::from(serde_json::to_vec(d).map_err(|e| Error::InvalidData {
            reason: format!("encoding manifest version {}: {e}", d.version),
        })?);
        crate::store::create_once(self.store.as_ref(), &key, body)
            .await
            .map_err(|source| Error::CommitUncertain {
                key: key.to_string(),
                source,
            })
    }

    /// Writes `m`'s checkpoint and the hint, then deletes what fell two checkpoints behind.
    /// Best effort: a failure costs readers a longer forward read, or leaves objects for
    /// [`Objects::delete_stale`].
    pub(super) async fn checkpoint(&self, m: &Manifest) {
        let key = layout::checkpoint_path(m.version);
        let body = match serde_json::to_vec(&m.checkpoint(chrono::Utc::now().timestamp_millis())) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "encoding a manifest checkpoint failed");
                return;
            }
        };
        if let Err(e) = self.store.put(&key, PutPayload::from(body)).await {
            tracing::warn!(error = %e, %key, "writing a manifest checkpoint failed");
            return;
        }
        let hint = PutPayload::from(m.version.to_string().into_bytes());
        if let Err(e) = self.store.put(&layout::last_checkpoint_path(), hint).await {
            tracing::warn!(error = %e, "writing the manifest hint failed");
        }
        let Some(old) = m.version.checked_sub(2 * CHECKPOINT_EVERY) else {
            return;
        };
        let mut doomed: Vec<Path> = ((old + 1)..=(old + CHECKPOINT_EVERY))
            .map(layout::manifest_path)
            .collect();
        if old > 0 {
            doomed.push(layout::checkpoint_path(old));
        }
        for key in doomed {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::debug!(error = %e, %key, "deleting an old manifest object failed"),
            }
        }
    }

    /// Deletes manifest objects older than the checkpoint before the newest one (left by
    /// failed cleanups); returns how many.
    pub(super) async fn delete_stale(&self, current: u64) -> Result<usize> {
        let newest = current - current % CHECKPOINT_EVERY;
        let Some(keep_from) = newest.checked_sub(CHECKPOINT_EVERY).filter(|k| *k > 0) else {
            return Ok(0);
        };
        let stale: Vec<Path> = self
            .list()
            .await?
            .into_iter()
            .filter(|(o, _)| match o {
                ManifestObject::Delta(v) => *v <= keep_from,
                ManifestObject::Checkpoint(v) => *v < keep_from,
            })
            .map(|(_, p)| p)
            .collect();
        for p in &stale {
            match self.store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err("delete manifest object", p)(e)),
            }
        }
        Ok(stale.len())
    }

    /// Version 1 from a listing of every table (a store written before manifests, or an empty
    /// one); `None` when another process created version 1 first.
    pub(super) async fn bootstrap(&self) -> Result<Option<Delta>> {
        let mut add = Vec::new();
        for table in Table::ALL {
            let prefix = table.prefix();
            let objects: Vec<_> = self
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(store_err("list", &prefix))?;
            for o in objects {
                match FileKey::parse(&o.location) {
                    Some(key) if key.table == table => add.push(LiveFile {
                        key: o.location.to_string(),
                        size: o.size,
                    }),
                    _ => tracing::debug!(key = %o.location, "ignoring object that is not a Tributary data file"),
                }
            }
        }
        add.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let first = Delta {
            format: FORMAT,
            version: 1,
            commit: Uuid::now_v7().to_string(),
            written_at: chrono::Utc::now().timestamp_millis(),
            add,
            remove: Vec::new(),
            writers: Default::default(),
            forget: Vec::new(),
        };
        if self.create(&first).await? {
            tracing::info!(files = first.add.len(), "created the storage manifest from a listing");
            Ok(Some(first))
        } else {
            Ok(None)
        }
    }
}
