//! `DpopProofStore`: the replay check of DPoP proofs (RFC 9449 §11.1) as one insert, which
//! also takes a few expired records with it.

use super::writer::ToWriter;
use super::{Backend, SqlStorage};
use crate::domain::secret::SecretDigest;
use crate::storage::timestamp::Timestamp;
use crate::storage::{DpopProofStore, StorageError, EXPIRED_PROOFS_TAKEN_PER_RECORD};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// PostgreSQL: the insert alone (see [`DpopProofStore::record_dpop_proof`] for why).
const RECORD_POSTGRES: &str =
    "INSERT INTO dpop_proofs (proof_digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// SQLite: the trim and the insert, two statements in one query text, which sqlx's SQLite
/// driver runs in one command on the writer (one hand-off, as the rotations in
/// `refresh/together.rs`). Each commits on its own; a trim that deletes nothing writes
/// nothing. The limit is written into the text rather than bound, so that no plan is
/// made for an unknown limit. `RETURNING` says whether the insert stored the record,
/// since the text's row count would add the trim's.
const TRIM_AND_RECORD_SQLITE: &str = "\
     DELETE FROM dpop_proofs WHERE proof_digest IN (SELECT proof_digest FROM dpop_proofs \
       WHERE expires_at < $3 ORDER BY expires_at LIMIT 2); \
     INSERT INTO dpop_proofs (proof_digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1";
const _: () = assert!(EXPIRED_PROOFS_TAKEN_PER_RECORD == 2, "the limit written in TRIM_AND_RECORD_SQLITE");

#[async_trait]
impl DpopProofStore for SqlStorage {
    async fn record_dpop_proof(
        &self,
        proof: &SecretDigest,
        expires_at: DateTime<Utc>,
        trim_before: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // The primary key decides between racing presentations: on both backends exactly
        // one insert stores a row; the rest do nothing and learn it was a replay.
        let (expires_at, trim_before) = (Timestamp::from(expires_at), Timestamp::from(trim_before));
        match &self.backend {
            Backend::Postgres { kept, .. } => {
                let pool = kept.pool_for_write();
                let done = sqlx::query(RECORD_POSTGRES).bind(proof.as_str()).bind(expires_at).execute(pool).await?;
                Ok(done.rows_affected() == 1)
            }
            Backend::Sqlite { writer, .. } => {
                let proof = proof.to_writer();
                writer
                    .run(move |pool| async move {
                        // `fetch_all`: only it runs the text to its end.
                        let stored = sqlx::query(TRIM_AND_RECORD_SQLITE)
                            .bind(proof.as_str())
                            .bind(expires_at)
                            .bind(trim_before)
                            .fetch_all(&pool)
                            .await?;
                        Ok(!stored.is_empty())
                    })
                    .await
            }
        }
    }
}
