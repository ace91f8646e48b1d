//! `DpopProofStore`: the replay check of DPoP proofs (RFC 9449 §11.1) as one insert, which
//! also takes a few expired records with it.

use super::{Backend, SqlStorage};
use crate::domain::secret::SecretDigest;
use crate::storage::timestamp::Timestamp;
use crate::storage::{DpopProofStore, StorageError, EXPIRED_PROOFS_TAKEN_PER_RECORD};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// PostgreSQL: the trim and the insert as one statement. `SKIP LOCKED`, because every
/// concurrent record would otherwise pick the same oldest rows and wait on each other's
/// row locks; a record that finds them taken trims nothing, and the next one catches up.
const TRIM_AND_RECORD_POSTGRES: &str = "WITH trimmed AS ( \
       DELETE FROM dpop_proofs WHERE proof_digest IN (SELECT proof_digest FROM dpop_proofs \
         WHERE expires_at < $3 ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
     INSERT INTO dpop_proofs (proof_digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1";

/// SQLite, which has no data-modifying CTEs: two statements in one query text, which sqlx's
/// SQLite driver runs in one command on the writer (one hand-off, as
/// `SQLITE_CLAIM_AND_INSERT` in `refresh.rs`). Each commits on its own; the trim deleting
/// nothing writes nothing. On both backends `RETURNING` says whether the insert stored the
/// record, since the text's row count would add the trim's.
const TRIM_AND_RECORD_SQLITE: &str = "\
     DELETE FROM dpop_proofs WHERE proof_digest IN (SELECT proof_digest FROM dpop_proofs \
       WHERE expires_at < $3 ORDER BY expires_at LIMIT $4); \
     INSERT INTO dpop_proofs (proof_digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1";

#[async_trait]
impl DpopProofStore for SqlStorage {
    async fn record_dpop_proof(
        &self,
        proof: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // The primary key decides between racing presentations: on both backends exactly
        // one insert stores a row; the rest do nothing and learn it was a replay.
        let (expires_at, now) = (Timestamp::from(expires_at), Timestamp::from(now));
        let sql = match self.backend {
            Backend::Sqlite { .. } => TRIM_AND_RECORD_SQLITE,
            Backend::Postgres(_) => TRIM_AND_RECORD_POSTGRES,
        };
        on_writer!(self, [proof], pool => {
            // `fetch_all`: on SQLite only it runs the text to its end.
            let stored = sqlx::query(sql)
                .bind(proof.as_str())
                .bind(expires_at)
                .bind(now)
                .bind(EXPIRED_PROOFS_TAKEN_PER_RECORD)
                .fetch_all(pool)
                .await?;
            Ok(!stored.is_empty())
        })
    }
}
