//! HA-pair elections: which replica of a cluster's Prometheus pair is accepted, shared by every
//! ingester through the object store (Mimir's HA tracker, with the object store as its KV).
//!
//! # Format (on-disk contract)
//! Each term of a cluster's election is one immutable object `_ha/<cluster>/<term>.json`
//! (`crate::layout`: the cluster escaped as in data-file keys, the term 20 digits from 1):
//!
//! ```text
//! {"replica":"prometheus-a","received_at":1795269600000}
//! ```
//!
//! - `replica`: the value of the replica label (`__replica__`, `prometheus_replica`, ...) whose
//!   writes are accepted for this cluster;
//! - `received_at`: when an ingester last accepted a write of that replica (ms since the epoch,
//!   that ingester's clock), as refreshed at most every `update_timeout`.
//!
//! The newest term is the election in force; a cluster without any term has none.
//!
//! # Protocol
//! Every change (the first election, a refresh of `received_at`, a takeover by the other
//! replica) is decided from the term it read, N (0: none), and written by creating term N+1
//! with a conditional create (`PutMode::Create`; S3 `If-None-Match: *`). Of several ingesters
//! deciding from the same term, exactly one creates N+1; the others find it taken
//! ([`Proposal::Lost`] with the newest term) and decide again from that. So the election moves
//! through one sequence of terms, each a compare-and-swap of its predecessor, and two ingesters
//! receiving from the two replicas converge on one.
//!
//! Why a term per change rather than one object per cluster updated in place with `If-Match`:
//! object_store's local filesystem store (the default `storage.url`) implements only the
//! conditional create, as the compactor lease (`crate::compactor`) found before; a create works
//! on every store Tributary supports. A refresh happens at most once per `update_timeout` per
//! cluster, so terms accumulate slowly, and the writer of term N+1 deletes term N-1 (a reader
//! that listed N before it was superseded can still read it). A reader that meets a deleted term
//! lists again.
//!
//! An election holds no data: losing every `_ha/` object only makes the next write of each
//! cluster elect its replica afresh.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, layout, store};

/// One term of a cluster's election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// The accepted replica.
    pub replica: String,
    /// When a write of it was last accepted (ms since the epoch).
    pub received_at: i64,
    /// The term (from 1): what the next change is decided from.
    pub term: u64,
}

/// The stored body of a term.
#[derive(Serialize, Deserialize)]
struct Body {
    replica: String,
    received_at: i64,
}

/// What a proposed change came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposal {
    /// The change is the election in force.
    Won(Election),
    /// Another ingester changed the election first: the newest term (decide again from it).
    Lost(Option<Election>),
}

/// Reads and changes the elections of every cluster. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Elections {
    store: Arc<dyn ObjectStore>,
}

/// Listings of a cluster's terms one read makes when the newest is deleted under it.
const READ_ATTEMPTS: usize = 3;

fn store_err<'k>(op: &'static str, key: &'k Path) -> impl FnOnce(object_store::Error) -> Error + 'k {
    move |source| Error::ObjectStore {
        op,
        key: key.to_string(),
        source,
    }
}

impl Elections {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The election in force for `cluster`, if any.
    pub async fn read(&self, cluster: &str) -> Result<Option<Election>> {
        let prefix = layout::election_prefix(cluster);
        let mut last = None;
        for _ in 0..READ_ATTEMPTS {
            let mut terms: Vec<u64> = self
                .store
                .list(Some(&prefix))
                .try_collect::<Vec<_>>()
                .await
                .map_err(store_err("list HA election", &prefix))?
                .iter()
                .filter_map(|o| layout::parse_election_path(&o.location))
                .filter(|(c, _)| c == cluster)
                .map(|(_, t)| t)
                .collect();
            terms.sort_unstable();
            let Some(&newest) = terms.last() else {
                return Ok(None);
            };
            // Terms an earlier writer failed to delete: nobody decides from them any more.
            for &old in terms.iter().filter(|t| **t + 1 < newest) {
                self.delete(cluster, old).await;
            }
            let key = layout::election_path(cluster, newest);
            match self.store.get(&key).await {
                Ok(r) => {
                    let bytes = r.bytes().await.map_err(store_err("read HA election", &key))?;
                    let body: Body = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidData {
                        reason: format!("HA election {key} is not valid: {e}"),
                    })?;
                    return Ok(Some(Election {
                        replica: body.replica,
                        received_at: body.received_at,
                        term: newest,
                    }));
                }
                // Superseded and deleted between the listing and the read.
                Err(e @ object_store::Error::NotFound { .. }) => last = Some(e),
                Err(e) => return Err(store_err("read HA election", &key)(e)),
            }
        }
        Err(store_err("read HA election", &prefix)(last.unwrap_or_else(|| {
            object_store::Error::Generic {
                store: "election",
                source: "no read attempt was made".into(),
            }
        })))
    }

    /// Proposes that `replica`, last received at `received_at`, is `cluster`'s elected replica,
    /// decided from `read` (the term the decision was made from; `None`: there was none).
    pub async fn propose(
        &self,
        cluster: &str,
        read: Option<&Election>,
        replica: &str,
        received_at: i64,
    ) -> Result<Proposal> {
        let term = read.map_or(1, |e| e.term + 1);
        let key = layout::election_path(cluster, term);
        let body = serde_json::to_vec(&Body {
            replica: replica.to_string(),
            received_at,
        })
        .map_err(|e| Error::InvalidData {
            reason: format!("HA election for {cluster:?}: {e}"),
        })?;
        // Two ingesters writing the same replica and millisecond write equal bodies: both then
        // see "ours", which is right, as they decided the same.
        if store::create_once(&*self.store, &key, body.into())
            .await
            .map_err(store_err("create HA election", &key))?
        {
            if term > 2 {
                self.delete(cluster, term - 2).await;
            }
            return Ok(Proposal::Won(Election {
                replica: replica.to_string(),
                received_at,
                term,
            }));
        }
        Ok(Proposal::Lost(self.read(cluster).await?))
    }

    /// Deletes a superseded term, best effort: a term left behind is deleted by a later read.
    async fn delete(&self, cluster: &str, term: u64) {
        let key = layout::election_path(cluster, term);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::debug!(error = %e, %key, "deleting a superseded HA election term failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (tempfile::TempDir, Elections) {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        (dir, Elections::new(Arc::new(store)))
    }

    #[tokio::test]
    async fn terms_move_by_conditional_create_and_a_stale_proposal_loses() {
        let (_dir, e) = local();
        assert_eq!(e.read("prod/eu").await.unwrap(), None);
        let Proposal::Won(first) = e.propose("prod/eu", None, "a", 1000).await.unwrap() else {
            panic!("the first election must win")
        };
        assert_eq!(first.term, 1);
        assert_eq!(e.read("prod/eu").await.unwrap(), Some(first.clone()));
        // Another ingester decided from "no election" too: it loses and learns the winner.
        assert_eq!(
            e.propose("prod/eu", None, "b", 1001).await.unwrap(),
            Proposal::Lost(Some(first.clone()))
        );
        let Proposal::Won(refreshed) = e.propose("prod/eu", Some(&first), "a", 5000).await.unwrap() else {
            panic!("a refresh from the newest term must win")
        };
        // A takeover decided from the superseded term loses.
        assert_eq!(
            e.propose("prod/eu", Some(&first), "b", 5001).await.unwrap(),
            Proposal::Lost(Some(refreshed.clone()))
        );
        // Clusters are independent.
        assert_eq!(e.read("prod").await.unwrap(), None);
    }

    #[tokio::test]
    async fn superseded_terms_are_deleted() {
        let (dir, e) = local();
        let mut read = None;
        for i in 0..6 {
            match e.propose("c", read.as_ref(), "a", i).await.unwrap() {
                Proposal::Won(w) => read = Some(w),
                Proposal::Lost(_) => panic!("nobody else writes"),
            }
        }
        let mut left: Vec<_> = std::fs::read_dir(dir.path().join("_ha/c"))
            .unwrap()
            .map(|f| f.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["00000000000000000005.json", "00000000000000000006.json"]);
        assert_eq!(
            e.read("c").await.unwrap().map(|e| (e.term, e.received_at)),
            Some((6, 5))
        );
    }

    #[tokio::test]
    async fn a_damaged_term_is_an_error_not_a_guess() {
        let (dir, e) = local();
        std::fs::create_dir_all(dir.path().join("_ha/c")).unwrap();
        std::fs::write(dir.path().join("_ha/c/00000000000000000001.json"), b"{").unwrap();
        assert!(matches!(e.read("c").await, Err(Error::InvalidData { .. })));
    }
}
