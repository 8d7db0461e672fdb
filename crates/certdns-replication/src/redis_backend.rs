//! The Redis backend: for split deployments (api role and N dns roles).
//!
//! Keys, under a configurable prefix (default `certdns:`):
//! * `<prefix>txt`: a hash, subdomain → encoded state (see `encoding`), tombstones
//!   included. The snapshot is an `HSCAN` of it.
//! * `<prefix>changes`: a stream of `{s: subdomain, d: encoded state}`, trimmed to
//!   about [`STREAM_MAXLEN`] entries. Followers `XREAD BLOCK` it.
//! * `<prefix>generation`: `building <id>` or `complete <id>`, written by the
//!   writers (see [`Generation`]). A Redis that lost its data has none.
//! * `<prefix>responders`: a hash, responder id → `<name>\t<position>\t<unix ms>`,
//!   and the channel `<prefix>applied`, on which responders announce the same.
//!
//! The hash and the stream are written by one Lua script, so they never disagree
//! and the newest-version-wins check is atomic in Redis too.
//!
//! Responders may read from a replica of the primary in their own PoP (`read
//! URL`); everything they write — their reports — goes to the primary, where the
//! writers listen.
//!
//! Concurrent publishes are coalesced: one task runs the script, and the changes
//! that arrive while it runs go out together in its next call. Under load that is
//! one round trip and one script run per batch instead of per `/update`; alone, a
//! change goes out at once. Order inside a batch does not matter, since the
//! script keeps the newest version whatever order it sees them in.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client, Script};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::encoding::{decode, encode};
use crate::membership::Membership;
use crate::{Applied, Change, Cursor, DistError, Distribution, Generation, Member, ResponderId, Result, Snapshot};

/// Stream length kept for followers that fall behind or reconnect.
const STREAM_MAXLEN: u32 = 100_000;
/// Entries per `XREAD`, and per `HSCAN` page.
const BATCH: usize = 1_000;
const SCAN_COUNT: usize = 2_000;
/// Changes per publish script call (bounds the time the script holds Redis).
const PUBLISH_CHUNK: usize = 500;
const EMPTY_STREAM: &str = "0-0";

/// Returns the id of the last stream entry it added, or `false` if none.
const PUBLISH_LUA: &str = r"
local last = false
for i = 2, #ARGV, 3 do
  local sub, ver, enc = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local held = redis.call('HGET', KEYS[1], sub)
  local held_ver = held and tonumber(string.match(held, '^%d+'))
  if not held_ver or held_ver < ver then
    redis.call('HSET', KEYS[1], sub, enc)
    last = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 's', sub, 'd', enc)
  end
end
return last
";

/// Claims a generation if there is none; returns the one held afterwards.
const BEGIN_GENERATION_LUA: &str = r"
local held = redis.call('GET', KEYS[1])
if held then return held end
local claimed = 'building ' .. ARGV[1]
redis.call('SET', KEYS[1], claimed)
return claimed
";

/// Marks generation ARGV[1] complete if it is still the one being built.
const COMPLETE_GENERATION_LUA: &str = r"
if redis.call('GET', KEYS[1]) == 'building ' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'complete ' .. ARGV[1])
  return 1
end
return 0
";

/// A responder's report: kept in a hash (for writers that start later) and
/// announced on a channel (for the writers listening now).
const REPORT_LUA: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\t' .. ARGV[3] .. '\t' .. ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[1] .. '\t' .. ARGV[2] .. '\t' .. ARGV[3])
return 1
";

pub struct RedisDistribution {
    /// The replica (or the primary) reads go to: snapshots and the stream.
    read_client: Client,
    read_conn: ConnectionManager,
    /// Reads go to a replica, not the primary.
    separate_reads: bool,
    /// The primary: publishes, generations, responders' reports.
    client: Client,
    conn: ConnectionManager,
    /// A connection of its own for `XREAD BLOCK`, which would hold up every other
    /// command queued behind it on a shared connection. Re-made after any error.
    reader: Mutex<Option<MultiplexedConnection>>,
    keys: Keys,
    /// To the publishing task; it ends when this is dropped.
    publisher: mpsc::Sender<Publish>,
    /// Filled by the task listening to responders' reports, started on first use.
    responders: Arc<Membership>,
    listening: OnceLock<()>,
}

/// The Redis keys of one deployment.
#[derive(Clone)]
struct Keys {
    states: String,
    stream: String,
    generation: String,
    responders: String,
    applied_channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            states: format!("{prefix}txt"),
            stream: format!("{prefix}changes"),
            generation: format!("{prefix}generation"),
            responders: format!("{prefix}responders"),
            applied_channel: format!("{prefix}applied"),
        }
    }
}

/// Changes to publish, and where to say how it went (the last stream id written).
struct Publish {
    changes: Vec<Change>,
    done: oneshot::Sender<std::result::Result<Option<String>, String>>,
}

/// The one task that runs the publish script; see the module comment.
struct PublishTask {
    conn: ConnectionManager,
    script: Script,
    keys: Keys,
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
            // Each caller gets the batch's last position: at or after its own changes.
            for p in batch {
                let _ = p.done.send(outcome.clone());
            }
        }
    }

    async fn apply(&self, changes: &[&Change]) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let mut last = None;
        for chunk in changes.chunks(PUBLISH_CHUNK) {
            let mut invocation = self.script.key(&self.keys.states);
            invocation.key(&self.keys.stream).arg(STREAM_MAXLEN);
            for change in chunk {
                invocation.arg(change.subdomain().to_string()).arg(change.version()).arg(encode(change));
            }
            let written: Option<String> = invocation.invoke_async(&mut conn).await?;
            last = written.or(last);
        }
        Ok(last)
    }
}

fn connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
}

fn open_client(url: &str) -> Result<Client> {
    Client::open(url).map_err(|e| DistError::Unavailable(format!("invalid Redis URL: {e}")))
}

impl RedisDistribution {
    /// Connects (failing at once if Redis is unreachable) and keeps reconnecting
    /// on its own afterwards.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Self::connect_with_reads_from(url, url, prefix).await
    }

    /// Like [`RedisDistribution::connect`], with reads (snapshots, the change
    /// stream, the generation) from `read_url` — a replica in the responder's own
    /// PoP — and writes to the primary at `url`.
    pub async fn connect_with_reads_from(url: &str, read_url: &str, prefix: &str) -> Result<Self> {
        let client = open_client(url)?;
        let conn = ConnectionManager::new_with_config(client.clone(), connection_config()).await?;
        let (read_client, read_conn) = if read_url == url {
            (client.clone(), conn.clone())
        } else {
            let read_client = open_client(read_url)?;
            let read_conn = ConnectionManager::new_with_config(read_client.clone(), connection_config()).await?;
            (read_client, read_conn)
        };
        let keys = Keys::new(prefix);
        let (publisher, rx) = mpsc::channel(1024);
        let task = PublishTask { conn: conn.clone(), script: Script::new(PUBLISH_LUA), keys: keys.clone() };
        tokio::spawn(task.run(rx));
        Ok(Self {
            read_client,
            read_conn,
            separate_reads: read_url != url,
            client,
            conn,
            reader: Mutex::new(None),
            keys,
            publisher,
            responders: Arc::default(),
            listening: OnceLock::new(),
        })
    }

    async fn reader(&self, wait: Duration) -> Result<MultiplexedConnection> {
        let mut slot = self.reader.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(wait + Duration::from_secs(2)));
        let conn = self.read_client.get_multiplexed_async_connection_with_config(&config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn first_stream_id(&self) -> Result<Option<String>> {
        let mut conn = self.read_conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.keys.stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.into_iter().next().map(|e| e.id))
    }

    async fn read_generation(&self, conn: &mut ConnectionManager) -> Result<Generation> {
        let held: Option<String> = redis::cmd("GET").arg(&self.keys.generation).query_async(conn).await?;
        Ok(parse_generation(held.as_deref()))
    }

    /// Starts listening to responders' reports (once per process).
    fn listen(&self) {
        if self.listening.set(()).is_err() {
            return;
        }
        let listener = ReportListener {
            client: self.client.clone(),
            conn: self.conn.clone(),
            keys: self.keys.clone(),
            responders: self.responders.clone(),
        };
        tokio::spawn(listener.run());
    }
}

fn parse_generation(held: Option<&str>) -> Generation {
    match held.and_then(|v| v.split_once(' ')) {
        Some(("complete", id)) => Generation::Complete(id.to_owned()),
        Some(("building", id)) => Generation::Building(id.to_owned()),
        _ => Generation::Missing,
    }
}

/// Keeps a writer's [`Membership`] current from the responders' reports: the
/// stored ones at start, then the channel. Reconnects on its own.
struct ReportListener {
    client: Client,
    conn: ConnectionManager,
    keys: Keys,
    responders: Arc<Membership>,
}

impl ReportListener {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Err(e) = self.listen_once().await {
                tracing::warn!(error = %e, retry_in = ?backoff, "listening to responders' reports failed");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            // The distribution (and with it the sender side) is gone: stop.
            if Arc::strong_count(&self.responders) == 1 {
                return;
            }
        }
    }

    async fn listen_once(&self) -> Result<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&self.keys.applied_channel).await?;
        // Reports stored before we listened: the ones recent enough are live.
        let mut conn = self.conn.clone();
        let stored: Vec<(String, String)> =
            redis::cmd("HGETALL").arg(&self.keys.responders).query_async(&mut conn).await?;
        let now_ms = unix_ms();
        for (id, value) in stored {
            let mut fields = value.split('\t');
            let (Some(name), Some(position), Some(at)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let age = Duration::from_millis(now_ms.saturating_sub(at.parse().unwrap_or(0)));
            if let Some(seen) = std::time::Instant::now().checked_sub(age) {
                let responder = ResponderId { id, name: name.to_owned() };
                self.responders.report(&responder, Cursor(position.to_owned()), seen);
            }
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else { continue };
            let mut fields = payload.split('\t');
            let (Some(id), Some(name), Some(position)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let responder = ResponderId { id: id.to_owned(), name: name.to_owned() };
            self.responders.report(&responder, Cursor(position.to_owned()), std::time::Instant::now());
            if Arc::strong_count(&self.responders) == 1 {
                return Ok(());
            }
        }
        Err(DistError::Unavailable("the responders' report channel closed".into()))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

    async fn publish(&self, changes: &[Change]) -> Result<Option<Cursor>> {
        if changes.is_empty() {
            return Ok(None);
        }
        let gone = || DistError::Unavailable("the Redis publishing task stopped".into());
        let (done, outcome) = oneshot::channel();
        self.publisher.send(Publish { changes: changes.to_vec(), done }).await.map_err(|_| gone())?;
        let last = outcome.await.map_err(|_| gone())?.map_err(DistError::Unavailable)?;
        Ok(last.map(Cursor))
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let mut conn = self.read_conn.clone();
        let generation = self.read_generation(&mut conn).await?;
        // The cursor is taken before the scan: any change the scan misses is after it.
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.keys.stream)
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
                .arg(&self.keys.states)
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
        // A generation that changed during the scan (state lost, or completed
        // under us) gives no guarantee: call it missing.
        let after = self.read_generation(&mut conn).await?;
        let generation = if after == generation { generation } else { Generation::Missing };
        Ok(Snapshot { states, cursor: Cursor(cursor), generation })
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
            .arg(&self.keys.stream)
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
        if self.separate_reads {
            let mut read = self.read_conn.clone();
            redis::cmd("PING").exec_async(&mut read).await?;
        }
        Ok(())
    }

    async fn generation(&self) -> Result<Generation> {
        let mut conn = self.read_conn.clone();
        self.read_generation(&mut conn).await
    }

    async fn begin_generation(&self) -> Result<Generation> {
        let mut conn = self.conn.clone();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let held: String =
            Script::new(BEGIN_GENERATION_LUA).key(&self.keys.generation).arg(id).invoke_async(&mut conn).await?;
        Ok(parse_generation(Some(&held)))
    }

    async fn restart_generation(&self) -> Result<Generation> {
        let mut conn = self.conn.clone();
        let claimed = format!("building {}", uuid::Uuid::new_v4().simple());
        redis::cmd("SET").arg(&self.keys.generation).arg(&claimed).exec_async(&mut conn).await?;
        Ok(parse_generation(Some(&claimed)))
    }

    async fn position(&self) -> Result<Cursor> {
        let mut conn = self.conn.clone();
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(Cursor(last.ids.into_iter().next().map_or_else(|| EMPTY_STREAM.to_owned(), |e| e.id)))
    }

    async fn complete_generation(&self, id: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let done: i64 =
            Script::new(COMPLETE_GENERATION_LUA).key(&self.keys.generation).arg(id).invoke_async(&mut conn).await?;
        Ok(done == 1)
    }

    async fn report_applied(&self, responder: &ResponderId, position: &Cursor) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = Script::new(REPORT_LUA)
            .key(&self.keys.responders)
            .key(&self.keys.applied_channel)
            .arg(&responder.id)
            .arg(responder.name.replace('\t', " "))
            .arg(&position.0)
            .arg(unix_ms())
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn wait_applied(&self, position: &Cursor, within: Duration) -> Result<Applied> {
        self.listen();
        Ok(self.responders.wait_applied(position, within).await)
    }

    async fn live_responders(&self) -> Result<Vec<Member>> {
        self.listen();
        Ok(self.responders.live())
    }

    async fn responders(&self) -> Result<Vec<Member>> {
        self.listen();
        Ok(self.responders.known())
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
