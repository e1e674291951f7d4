//! The compactor lease: at most one compactor works at a time, arbitrated by the object store.
//!
//! # Protocol (on-disk contract)
//! Each term is one immutable object `_compactor/lease-<term>.json` (20-digit term),
//! `{"owner":"<id>","expires_at":<ms since the epoch>}`, created with a conditional put that
//! fails if the object exists, so two compactors can never both create the same term. To
//! acquire or renew, a compactor reads the newest term: if another owner holds it and it has
//! not expired, it waits; otherwise it creates the next term naming itself. Releasing creates
//! a term that has already expired. Only create is needed, which every object store (and the
//! local filesystem) supports; old terms are deleted by the holder.
//!
//! The lease saves work; it is not what keeps data correct. Every compaction commit removes
//! its inputs through the manifest, and a commit whose inputs another commit removed fails,
//! so even two compactors that both believe they hold the lease (a clock far off, a pause
//! longer than the TTL) cannot double or lose rows.

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::{Error, Result};

/// One lease term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Term {
    pub(crate) owner: String,
    pub(crate) expires_at: i64,
}

/// What an attempt to take the lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lease {
    /// This compactor holds term `term`.
    Held { term: u64 },
    /// Another compactor holds it.
    Busy { owner: String, expires_at: i64 },
}

fn store_err<'k>(
    op: &'static str,
    key: &'k object_store::path::Path,
) -> impl FnOnce(object_store::Error) -> Error + 'k {
    move |source| Error::ObjectStore {
        op,
        key: key.to_string(),
        source,
    }
}

/// The newest term and its content, if any.
async fn newest(store: &dyn ObjectStore) -> Result<Option<(u64, Term)>> {
    let prefix = layout::lease_prefix();
    let mut terms: Vec<u64> = store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(store_err("list compactor leases", &prefix))?
        .iter()
        .filter_map(|o| layout::parse_lease_path(&o.location))
        .collect();
    terms.sort_unstable();
    while let Some(t) = terms.pop() {
        let key = layout::lease_path(t);
        match store.get(&key).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(store_err("read compactor lease", &key))?;
                let term: Term = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidData {
                    reason: format!("compactor lease {key} is not valid: {e}"),
                })?;
                return Ok(Some((t, term)));
            }
            // Deleted between the listing and the read: an older one was just cleaned up.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(store_err("read compactor lease", &key)(e)),
        }
    }
    Ok(None)
}

/// Takes or renews the lease for `owner` until `now + ttl_ms`.
pub(crate) async fn acquire(store: &dyn ObjectStore, owner: &str, now: i64, ttl_ms: i64) -> Result<Lease> {
    let current = newest(store).await?;
    let next = match &current {
        Some((_, t)) if t.owner != owner && t.expires_at > now => {
            return Ok(Lease::Busy {
                owner: t.owner.clone(),
                expires_at: t.expires_at,
            });
        }
        Some((n, _)) => n + 1,
        None => 1,
    };
    let term = Term {
        owner: owner.to_string(),
        expires_at: now.saturating_add(ttl_ms),
    };
    if create(store, next, &term).await? {
        if let Some(old) = next.checked_sub(2).filter(|t| *t > 0) {
            let key = layout::lease_path(old);
            if let Err(e) = store.delete(&key).await {
                tracing::debug!(error = %e, %key, "deleting an old lease term failed");
            }
        }
        return Ok(Lease::Held { term: next });
    }
    // Another compactor created this term first.
    Ok(match newest(store).await? {
        Some((_, t)) if t.owner != owner => Lease::Busy {
            owner: t.owner,
            expires_at: t.expires_at,
        },
        Some((n, _)) => Lease::Held { term: n },
        None => Lease::Busy {
            owner: "unknown".into(),
            expires_at: now,
        },
    })
}

/// Gives the lease up (a term that has already expired), if `owner` still holds it.
pub(crate) async fn release(store: &dyn ObjectStore, owner: &str) -> Result<()> {
    if let Some((n, t)) = newest(store).await?
        && t.owner == owner
    {
        let released = Term {
            owner: owner.to_string(),
            expires_at: 0,
        };
        create(store, n + 1, &released).await?;
    }
    Ok(())
}

/// Creates term `n`; false when another compactor's term `n` exists (a lost answer is read
/// back, `store::create_once`).
async fn create(store: &dyn ObjectStore, n: u64, term: &Term) -> Result<bool> {
    let key = layout::lease_path(n);
    let body = bytes::Bytes::from(serde_json::to_vec(term).map_err(|e| Error::InvalidData {
        reason: format!("encoding lease: {e}"),
    })?);
    crate::store::create_once(store, &key, body)
        .await
        .map_err(store_err("create compactor lease", &key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn one_owner_at_a_time_until_expiry_or_release() {
        let store = InMemory::new();
        assert_eq!(acquire(&store, "a", 1_000, 500).await.unwrap(), Lease::Held { term: 1 });
        assert_eq!(
            acquire(&store, "b", 1_200, 500).await.unwrap(),
            Lease::Busy {
                owner: "a".into(),
                expires_at: 1_500
            }
        );
        assert_eq!(
            acquire(&store, "a", 1_300, 500).await.unwrap(),
            Lease::Held { term: 2 },
            "renewal"
        );
        assert_eq!(
            acquire(&store, "b", 1_900, 500).await.unwrap(),
            Lease::Held { term: 3 },
            "a expired"
        );
        release(&store, "a").await.unwrap();
        assert!(
            matches!(acquire(&store, "a", 2_000, 500).await.unwrap(), Lease::Busy { .. }),
            "only the holder releases"
        );
        release(&store, "b").await.unwrap();
        assert_eq!(acquire(&store, "a", 2_000, 500).await.unwrap(), Lease::Held { term: 5 });
        assert!(
            store.get(&layout::lease_path(1)).await.is_err(),
            "old terms are deleted"
        );
    }

    #[tokio::test]
    async fn racing_compactors_get_one_lease() {
        let store = std::sync::Arc::new(InMemory::new());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { acquire(store.as_ref(), &format!("c{i}"), 1_000, 10_000).await.unwrap() })
            })
            .collect();
        let mut held = 0;
        for t in tasks {
            held += usize::from(matches!(t.await.unwrap(), Lease::Held { .. }));
        }
        assert_eq!(held, 1);
    }
}
