//! `DpopProofStore`: the replay check of DPoP proofs (RFC 9449 §11.1) as one insert.

use super::SqlStorage;
use crate::domain::secret::SecretDigest;
use crate::storage::timestamp::Timestamp;
use crate::storage::{DpopProofStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl DpopProofStore for SqlStorage {
    async fn record_dpop_proof(&self, proof: &SecretDigest, expires_at: DateTime<Utc>) -> Result<bool, StorageError> {
        // The primary key decides between racing presentations: on both backends exactly
        // one insert affects a row; the rest do nothing and learn it was a replay.
        let sql = "INSERT INTO dpop_proofs (proof_digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        let expires_at = Timestamp::from(expires_at);
        on_writer!(self, [proof], pool => {
            let done = sqlx::query(sql).bind(proof.as_str()).bind(expires_at).execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
