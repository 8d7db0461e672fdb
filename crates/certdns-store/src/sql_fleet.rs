//! [`FleetStore`] over sqlx, generic over the database like [`crate::SqlStore`].

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::fleet::{FleetStore, Heartbeat};
use crate::{Result, StoreError};

/// The heartbeat view of a store's pools (see [`crate::Store::fleet`]).
pub struct SqlFleetStore<DB: Database> {
    pub(crate) read: Pool<DB>,
    pub(crate) write: Pool<DB>,
}

#[derive(FromRow)]
pub struct HeartbeatRow {
    instance_id: String,
    role: String,
    name: String,
    started_at: i64,
    seen_at: i64,
    detail: String,
}

impl TryFrom<HeartbeatRow> for Heartbeat {
    type Error = StoreError;
    fn try_from(r: HeartbeatRow) -> Result<Self> {
        let detail = serde_json::from_str(&r.detail)
            .map_err(|e| StoreError::Corrupt(format!("service_heartbeats.detail of {}: {e}", r.instance_id)))?;
        Ok(Heartbeat {
            instance_id: r.instance_id,
            role: r.role,
            name: r.name,
            started_at: r.started_at,
            seen_at: r.seen_at,
            detail,
        })
    }
}

#[async_trait]
impl<DB> FleetStore for SqlFleetStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'r> HeartbeatRow: FromRow<'r, DB::Row>,
{
    async fn put_heartbeat(&self, beat: &Heartbeat, forget_before: i64) -> Result<()> {
        let detail = beat.detail.to_string();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO service_heartbeats (instance_id, role, name, started_at, seen_at, detail) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance_id) DO UPDATE SET \
             role = excluded.role, name = excluded.name, seen_at = excluded.seen_at, detail = excluded.detail",
        )
        .bind(beat.instance_id.as_str())
        .bind(beat.role.as_str())
        .bind(beat.name.as_str())
        .bind(beat.started_at)
        .bind(beat.seen_at)
        .bind(detail.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM service_heartbeats WHERE seen_at < $1").bind(forget_before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_heartbeat(&self, instance_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM service_heartbeats WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn heartbeats(&self, since: i64) -> Result<Vec<Heartbeat>> {
        let rows: Vec<HeartbeatRow> = sqlx::query_as(
            "SELECT instance_id, role, name, started_at, seen_at, detail FROM service_heartbeats \
             WHERE seen_at >= $1 ORDER BY role, name, instance_id",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(Heartbeat::try_from).collect()
    }
}
