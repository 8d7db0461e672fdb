//! The Redis backend: for split deployments (api role and N dns roles).
//!
//! Keys, under a configurable prefix (default `certdns:`):
//! * `<prefix>txt`: a hash, subdomain → encoded state (see `encoding`), tombstones
//!   included. The snapshot is an `HSCAN` of it.
//! * `<prefix>changes`: a stream of `{s: subdomain, d: encoded state}`, trimmed to
//!   about [`STREAM_MAXLEN`] entries. Followers `XREAD BLOCK` it.
//!
//! Both are written by one Lua script, so the hash and the stream never disagree
//! and the newest-version-wins check is atomic in Redis too.
//!
//! Concurrent publishes are coalesced: one task runs the script, and the changes
//! that arrive while it runs go out together in its next call. Under load that is
//! one round trip and one script run per batch instead of per `/update`; alone, a
//! change goes out at once. Order inside a batch does not matter, since the
//! script keeps the newest version whatever order it sees them in.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client, Script};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::encoding::{decode, encode};
use crate::{Change, Cursor, DistError, Distribution, Result, Snapshot};

/// Stream length kept for followers that fall behind or reconnect.
const STREAM_MAXLEN: u32 = 100_000;
/// Entries per `XREAD`, and per `HSCAN` page.
const BATCH: usize = 1_000;
const SCAN_COUNT: usize = 2_000;
/// Changes per publish script call (bounds the time the script holds Redis).
const PUBLISH_CHUNK: usize = 500;
const EMPTY_STREAM: &str = "0-0";

const PUBLISH_LUA: &str = r"
local applied = 0
for i = 2, #ARGV, 3 do
  local sub, ver, enc = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local held = redis.call('HGET', KEYS[1], sub)
  local held_ver = held and tonumber(string.match(held, '^%d+'))
  if not held_ver or held_ver < ver then
    redis.call('HSET', KEYS[1], sub, enc)
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 's', sub, 'd', enc)
    applied = applied + 1
  end
end
return applied
";

pub struct RedisDistribution {
    client: Client,
    conn: ConnectionManager,
    /// A connection of its own for `XREAD BLOCK`, which would hold up every other
    /// command queued behind it on a shared connection. Re-made after any error.
    reader: Mutex<Option<MultiplexedConnection>>,
    states_key: String,
    stream_key: String,
    /// To the publishing task; it ends when this is dropped.
    publisher: mpsc::Sender<Publish>,
}

/// Changes to publish, and where to say how it went.
struct Publish {
    changes: Vec<Change>,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The one task that runs the publish script; see the module comment.
struct PublishTask {
    conn: ConnectionManager,
    script: Script,
    states_key: String,
    stream_key: String,
}

impl PublishTask {
    async fn run(self, mut rx: mpsc::Receiver<Publish>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let mut count = batch[0].changes.len();
            while count < PUBLISH_CHUNK {
                match rx.try_recv() {
                    Ok(p) => {
                        count += p.changes.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let changes: Vec<&Change> = batch.iter().flat_map(|p| &p.changes).collect();
            let outcome = self.apply(&changes).await.map_err(|e| match e {
                DistError::Unavailable(message) => message,
                other => other.to_string(),
            });
            for p in batch {
                let _ = p.done.send(outcome.clone());
            }
        }
    }

    async fn apply(&self, changes: &[&Change]) -> Result<()> {
        let mut conn = self.conn.clone();
        for chunk in changes.chunks(PUBLISH_CHUNK) {
            let mut invocation = self.script.key(&self.states_key);
            invocation.key(&self.stream_key).arg(STREAM_MAXLEN);
            for change in chunk {
                invocation.arg(change.subdomain().to_string()).arg(change.version()).arg(encode(change));
            }
            let _applied: u64 = invocation.invoke_async(&mut conn).await?;
        }
        Ok(())
    }
}

impl RedisDistribution {
    /// Connects (failing at once if Redis is unreachable) and keeps reconnecting
    /// on its own afterwards.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = Client::open(url).map_err(|e| DistError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        let states_key = format!("{prefix}txt");
        let stream_key = format!("{prefix}changes");
        let (publisher, rx) = mpsc::channel(1024);
        let task = PublishTask {
            conn: conn.clone(),
            script: Script::new(PUBLISH_LUA),
            states_key: states_key.clone(),
            stream_key: stream_key.clone(),
        };
        tokio::spawn(task.run(rx));
        Ok(Self { client, conn, reader: Mutex::new(None), states_key, stream_key, publisher })
    }

    async fn reader(&self, wait: Duration) -> Result<MultiplexedConnection> {
        let mut slot = self.reader.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(wait + Duration::from_secs(2)));
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn first_stream_id(&self) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.stream_key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.into_iter().next().map(|e| e.id))
    }
}

/// Orders stream ids (`<ms>-<seq>`) numerically.
fn stream_id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[async_trait]
impl Distribution for RedisDistribution {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let gone = || DistError::Unavailable("the Redis publishing task stopped".into());
        let (done, outcome) = oneshot::channel();
        self.publisher.send(Publish { changes: changes.to_vec(), done }).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?.map_err(DistError::Unavailable)
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let mut conn = self.conn.clone();
        // The cursor is taken before the scan: any change the scan misses is after it.
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.stream_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let cursor = last.ids.into_iter().next().map_or_else(|| EMPTY_STREAM.to_owned(), |e| e.id);

        let mut states = Vec::new();
        let mut scan_cursor = "0".to_owned();
        loop {
            let (next, flat): (String, Vec<String>) = redis::cmd("HSCAN")
                .arg(&self.states_key)
                .arg(&scan_cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await?;
            for pair in flat.chunks_exact(2) {
                if let Change::Upsert(state) = decode(&pair[0], &pair[1])? {
                    states.push(state);
                }
            }
            if next == "0" {
                break;
            }
            scan_cursor = next;
        }
        Ok(Snapshot { states, cursor: Cursor(cursor) })
    }

    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor)> {
        let mut reader = self.reader(wait).await?;
        let block_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let read: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.stream_key)
            .arg(&cursor.0)
            .query_async(&mut reader)
            .await;
        let reply = match read {
            Ok(reply) => reply,
            Err(e) => {
                *self.reader.lock().await = None;
                return Err(e.into());
            }
        };
        let entries: Vec<_> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        if entries.len() == BATCH {
            // Far behind: make sure the stream was not trimmed past our position.
            if let Some(first) = self.first_stream_id().await?
                && stream_id_key(&first) > stream_id_key(&cursor.0)
                && cursor.0 != EMPTY_STREAM
            {
                return Err(DistError::CursorLost);
            }
        }
        let mut next = cursor.clone();
        let mut changes = Vec::with_capacity(entries.len());
        for entry in entries {
            let field = |name: &str| -> Result<String> {
                entry
                    .get::<String>(name)
                    .ok_or_else(|| DistError::Corrupt(format!("stream entry {} lacks field {name}", entry.id)))
            };
            changes.push(decode(&field("s")?, &field("d")?)?);
            next = Cursor(entry.id.clone());
        }
        Ok((changes, next))
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").exec_async(&mut conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert!(stream_id_key("10-0") > stream_id_key("9-5"));
        assert!(stream_id_key("10-11") > stream_id_key("10-2"));
        assert_eq!(stream_id_key(EMPTY_STREAM), (0, 0));
    }
}
