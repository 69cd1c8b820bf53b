//! Purge fan-out: every purge is recorded in Redis (a sequence number, the source's generation,
//! an entry in a bounded log) and announced on Pub/Sub, atomically by one script. Each node runs
//! a [`PurgeListener`] that turns announcements — and, for what announcements cannot guarantee,
//! the recorded state — into [`PurgeNotice`]s for the gateway to apply to its tiers.
//!
//! Why not Pub/Sub alone: a node that is disconnected or restarting misses messages. The
//! listener therefore keeps a [`PurgeCursor`] (which history of purges, how far it got):
//! - on every (re)connect it reads the state and replays the log entries after its cursor;
//! - every `purge_poll` it checks the sequence number, so a lost message or a silently dead
//!   subscription delays a purge by at most that;
//! - when the entries it needs were trimmed from the log, when Redis lost its data (a new
//!   history id) or when it starts without a cursor, it cannot know what it missed and tells the
//!   gateway to clear everything ([`PurgeNotice::Resync`] with `clear_all`).
//!
//! Each Pub/Sub message only says "the sequence moved"; the events themselves are always read
//! from the log, so live delivery and catch-up are the same code.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::script::Lua;
use futures_util::StreamExt;
use redis::streams::StreamRangeReply;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::coordinator::{Budget, Coordinator};
use crate::error::{ClusterError, ErrorKind};
use crate::events::ListenerShared;
pub use crate::events::{
    ListenerStatus, PurgeCursor, PurgeEvent, PurgeKind, PurgeNotice, PurgeReceipt, PurgeRecord,
    SourceGeneration,
};
use crate::observe::Op;

static PURGE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("scripts/purge.lua")));

/// The running purge listener: receive its notices with [`PurgeListener::recv`]. Dropping it
/// stops the task.
#[derive(Debug)]
pub struct PurgeListener {
    rx: mpsc::Receiver<PurgeNotice>,
    task: JoinHandle<()>,
}

impl PurgeListener {
    /// The next notice (`None` only once the listener stopped).
    pub async fn recv(&mut self) -> Option<PurgeNotice> {
        self.rx.recv().await
    }

    /// A notice if one is waiting.
    pub fn try_recv(&mut self) -> Option<PurgeNotice> {
        self.rx.try_recv().ok()
    }
}

impl Drop for PurgeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Notices waiting for the gateway; the listener waits (and stops reading Redis) beyond this.
const CHANNEL: usize = 1024;
/// Log entries read per call.
const PAGE: usize = 500;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Coordinator {
    /// Records `event` for the fleet and announces it. Every node's listener (this one's too)
    /// delivers it; the caller may also apply it locally at once. Runs within the background
    /// budget, not behind the breaker. On error nothing may have been recorded: the purge then
    /// reached this node only, and the admin should be told so (and retry).
    pub async fn publish_purge(&self, event: &PurgeEvent) -> Result<PurgeReceipt, ClusterError> {
        let inner = &self.inner;
        let (kind, a, b) = event.parts();
        let keys = &inner.keys;
        let history = self.random_token();
        let (history, seq, generation): (String, u64, u64) = self
            .call(
                Op::PurgePublish,
                Budget::Background,
                |mut conn| async move {
                    PURGE
                        .run(&mut conn, 3, |c| {
                            c.arg(&keys.purge_state)
                                .arg(&keys.purge_generations)
                                .arg(&keys.purge_log)
                                .arg(kind)
                                .arg(a)
                                .arg(b)
                                .arg(&inner.settings.node_id)
                                .arg(&history)
                                .arg(inner.settings.purge_log_len)
                                .arg(&keys.purge_channel);
                        })
                        .await
                },
            )
            .await?;
        inner.counters.purge_sent();
        inner.observer.purge_sent(event.kind());
        tracing::info!(kind, seq, generation, "purge published to the fleet");
        Ok(PurgeReceipt {
            cursor: PurgeCursor { history, seq },
            generation: matches!(event, PurgeEvent::Source { .. }).then_some(generation),
        })
    }

    /// The current generation of one source in Redis (0 if never purged). Background budget.
    pub async fn source_generation(&self, site: &str, source: &str) -> Result<u64, ClusterError> {
        let field = format!("{site}\n{source}");
        let key = &self.inner.keys.purge_generations;
        let g: Option<u64> = self
            .call(Op::PurgeSync, Budget::Background, |mut conn| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg(&field)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(g.unwrap_or(0))
    }

    /// Starts the purge listener. `since` is the cursor persisted after the last notice applied
    /// before a restart; `None` (nothing persisted) makes the first notice a
    /// [`PurgeNotice::Resync`] with `clear_all` set. Must be called inside a tokio runtime; the
    /// task runs until the returned listener is dropped, re-subscribing with back-off.
    pub fn purge_listener(&self, since: Option<PurgeCursor>) -> PurgeListener {
        let (tx, rx) = mpsc::channel(CHANNEL);
        self.inner.listener.update(|s| s.cursor = since.clone());
        let task = tokio::spawn(listen(self.clone(), tx, since));
        PurgeListener { rx, task }
    }
}

/// The listener's loop: subscribe, catch up, follow; again after any break.
async fn listen(c: Coordinator, tx: mpsc::Sender<PurgeNotice>, mut cursor: Option<PurgeCursor>) {
    let shared = c.inner.listener.clone();
    let mut backoff = MIN_BACKOFF;
    let mut node = 0usize;
    loop {
        let mut pubsub = match c.inner.link.pubsub(node).await {
            Ok(p) => p,
            Err(e) => {
                fail(&shared, "subscribing", &e);
                node = node.wrapping_add(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if let Err(e) = pubsub.subscribe(&c.inner.keys.purge_channel).await {
            fail(&shared, "subscribing", &e.into());
            node = node.wrapping_add(1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        shared.update(|s| s.subscribed = true);
        // Subscribed first, then caught up: nothing recorded in between can be missed.
        match sync(&c, &tx, &mut cursor, true).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                fail(&shared, "catching up", &e);
                shared.update(|s| s.subscribed = false);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        backoff = MIN_BACKOFF;
        let mut messages = pubsub.into_on_message();
        let mut poll = tokio::time::interval(c.inner.settings.purge_poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.reset();
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(msg) => {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        if is_behind(&payload, cursor.as_ref()) {
                            continue;
                        }
                    }
                    None => break,
                },
                _ = poll.tick() => {}
            }
            match sync(&c, &tx, &mut cursor, false).await {
                Ok(true) => {}
                Ok(false) => return,
                // The next message or poll tries again.
                Err(e) => fail(&shared, "reading purges", &e),
            }
        }
        tracing::warn!("purge subscription lost; re-subscribing");
        shared.update(|s| s.subscribed = false);
    }
}

/// Whether an announcement `history seq` is already covered by `cursor`.
fn is_behind(payload: &str, cursor: Option<&PurgeCursor>) -> bool {
    let (Some(cursor), Some((history, seq))) = (cursor, payload.split_once(' ')) else {
        return false;
    };
    history == cursor.history && seq.parse::<u64>().is_ok_and(|s| s <= cursor.seq)
}

fn fail(shared: &ListenerShared, doing: &str, e: &ClusterError) {
    tracing::warn!(error = %e, "purge listener: {doing} failed");
    shared.update(|s| s.last_error = Some(format!("{doing}: {e}")));
}

/// Brings `cursor` up to date, delivering notices. `full` (after a (re)connection) always sends
/// a [`PurgeNotice::Resync`]. Returns `Ok(false)` when the receiver is gone.
async fn sync(
    c: &Coordinator,
    tx: &mpsc::Sender<PurgeNotice>,
    cursor: &mut Option<PurgeCursor>,
    full: bool,
) -> Result<bool, ClusterError> {
    let inner = &c.inner;
    let (history, seq) = read_state(c).await?;
    let mut clear = match cursor.as_ref() {
        None => true,
        Some(cur) => cur.history != history || seq < cur.seq,
    };
    let mut records = Vec::new();
    if !clear && let Some(cur) = cursor.as_ref() {
        let mut next = cur.seq + 1;
        while next <= seq {
            let page = read_log(c, next, seq).await?;
            let Some(first) = page.first() else { break };
            if first.seq != next {
                break;
            }
            next = page.last().map_or(next, |r| r.seq + 1);
            let full_page = page.len() == PAGE;
            records.extend(page);
            if !full_page {
                break;
            }
        }
        if next <= seq {
            // The log no longer reaches back to our cursor (trimmed), or has a hole.
            tracing::warn!(
                cursor = %cur,
                seq,
                "purge log does not reach back to this node's cursor: clearing"
            );
            clear = true;
        }
    }
    if clear || full {
        let generations = read_generations(c).await?;
        let resync_cursor = if clear {
            records.clear();
            PurgeCursor {
                history: history.clone(),
                seq,
            }
        } else {
            cursor.clone().unwrap_or(PurgeCursor {
                history: history.clone(),
                seq,
            })
        };
        let notice = PurgeNotice::Resync {
            clear_all: clear,
            generations,
            cursor: resync_cursor.clone(),
        };
        if !deliver(c, tx, notice).await {
            return Ok(false);
        }
        *cursor = Some(resync_cursor);
    }
    for record in records {
        let next = PurgeCursor {
            history: history.clone(),
            seq: record.seq,
        };
        if !deliver(
            c,
            tx,
            PurgeNotice::Purge {
                record,
                cursor: next.clone(),
            },
        )
        .await
        {
            return Ok(false);
        }
        *cursor = Some(next);
    }
    let now = Instant::now();
    inner.listener.update(|s| {
        s.synced_at = Some(now);
        s.last_error = None;
    });
    Ok(true)
}

async fn deliver(c: &Coordinator, tx: &mpsc::Sender<PurgeNotice>, notice: PurgeNotice) -> bool {
    let kind = notice.kind();
    let cursor = notice.cursor().clone();
    // Counted before the hand-over, so that whoever reads the notice also sees it counted.
    c.inner.counters.purge_received(kind);
    c.inner.observer.purge_received(kind);
    c.inner.listener.update(|s| s.cursor = Some(cursor));
    tx.send(notice).await.is_ok()
}

/// The history id (created if Redis has none) and the last sequence number.
async fn read_state(c: &Coordinator) -> Result<(String, u64), ClusterError> {
    let key = &c.inner.keys.purge_state;
    let fresh = c.random_token();
    let (_, (history, seq)): (i64, (Option<String>, Option<u64>)) = c
        .call(Op::PurgeSync, Budget::Background, |mut conn| async move {
            redis::pipe()
                .cmd("HSETNX")
                .arg(key)
                .arg("history")
                .arg(&fresh)
                .cmd("HMGET")
                .arg(key)
                .arg("history")
                .arg("seq")
                .query_async(&mut conn)
                .await
        })
        .await?;
    let history = history
        .ok_or_else(|| ClusterError::new(ErrorKind::Redis, "purge state has no history id"))?;
    Ok((history, seq.unwrap_or(0)))
}

/// Up to [`PAGE`] log entries with sequence numbers in `from..=to`.
async fn read_log(c: &Coordinator, from: u64, to: u64) -> Result<Vec<PurgeRecord>, ClusterError> {
    let key = &c.inner.keys.purge_log;
    let reply: StreamRangeReply = c
        .call(Op::PurgeSync, Budget::Background, |mut conn| async move {
            redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("{from}-0"))
                .arg(format!("{to}-0"))
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn)
                .await
        })
        .await?;
    let mut out = Vec::with_capacity(reply.ids.len());
    for entry in reply.ids {
        let seq = entry
            .id
            .split_once('-')
            .and_then(|(s, _)| s.parse::<u64>().ok());
        let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
        let event = PurgeEvent::from_parts(&field("kind"), field("a"), field("b"));
        match (seq, event) {
            (Some(seq), Some(event)) => out.push(PurgeRecord {
                seq,
                event,
                generation: entry.get::<u64>("gen").unwrap_or(0),
                origin: field("origin"),
            }),
            // An entry this version does not understand: the cursor cannot pass it safely.
            _ => {
                return Err(ClusterError::new(
                    ErrorKind::Redis,
                    format!("unreadable purge log entry {}", entry.id),
                ));
            }
        }
    }
    Ok(out)
}

/// Every source generation recorded (HSCAN, so that a large table does not block Redis).
async fn read_generations(c: &Coordinator) -> Result<Vec<SourceGeneration>, ClusterError> {
    let key = &c.inner.keys.purge_generations;
    let mut out = HashMap::new();
    let mut scan_cursor = 0u64;
    loop {
        let (next, pairs): (u64, Vec<(String, u64)>) = c
            .call(Op::PurgeSync, Budget::Background, |mut conn| async move {
                redis::cmd("HSCAN")
                    .arg(key)
                    .arg(scan_cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        for (field, generation) in pairs {
            if let Some((site, source)) = field.split_once('\n') {
                out.insert((site.to_string(), source.to_string()), generation);
            }
        }
        if next == 0 {
            break;
        }
        scan_cursor = next;
    }
    let mut list: Vec<SourceGeneration> = out
        .into_iter()
        .map(|((site, source), generation)| SourceGeneration {
            site,
            source,
            generation,
        })
        .collect();
    list.sort_by(|a, b| (&a.site, &a.source).cmp(&(&b.site, &b.source)));
    Ok(list)
}

/// A listener's notices applied to a plain map: the generations as Redis counts them (what a
/// gateway that mirrors Redis's counts would hold; used by this crate's tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GenerationTable {
    map: HashMap<(String, String), u64>,
}

impl GenerationTable {
    /// Applies a notice; returns whether everything cached must be dropped.
    pub fn apply(&mut self, notice: &PurgeNotice) -> bool {
        match notice {
            PurgeNotice::Resync {
                clear_all,
                generations,
                ..
            } => {
                if *clear_all {
                    self.map.clear();
                }
                for g in generations {
                    self.raise(&g.site, &g.source, g.generation);
                }
                *clear_all
            }
            PurgeNotice::Purge { record, .. } => match &record.event {
                PurgeEvent::Source { site, source } => {
                    self.raise(site, source, record.generation);
                    false
                }
                PurgeEvent::All => true,
                PurgeEvent::Url(_) => false,
            },
        }
    }

    /// Raises a source's generation to at least `generation`.
    pub fn raise(&mut self, site: &str, source: &str, generation: u64) {
        let g = self
            .map
            .entry((site.to_string(), source.to_string()))
            .or_insert(0);
        *g = (*g).max(generation);
    }

    /// A source's generation (0 if never purged).
    pub fn get(&self, site: &str, source: &str) -> u64 {
        self.map
            .get(&(site.to_string(), source.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_form() {
        let c = PurgeCursor {
            history: "ab12".into(),
            seq: 42,
        };
        assert_eq!(c.to_string(), "ab12:42");
        assert_eq!("ab12:42\n".parse::<PurgeCursor>(), Ok(c));
        assert!("ab12".parse::<PurgeCursor>().is_err());
        assert!(":4".parse::<PurgeCursor>().is_err());
        assert!("a:x".parse::<PurgeCursor>().is_err());
    }

    #[test]
    fn announcements_already_covered_are_skipped() {
        let c = PurgeCursor {
            history: "h".into(),
            seq: 5,
        };
        assert!(is_behind("h 5", Some(&c)));
        assert!(is_behind("h 3", Some(&c)));
        assert!(!is_behind("h 6", Some(&c)));
        assert!(!is_behind("other 1", Some(&c)));
        assert!(!is_behind("garbage", Some(&c)));
        assert!(!is_behind("h 1", None));
    }

    #[test]
    fn events_round_trip_through_their_parts() {
        for e in [
            PurgeEvent::Url("http://a.test/img/x".into()),
            PurgeEvent::Source {
                site: "shop".into(),
                source: "/a.jpg".into(),
            },
            PurgeEvent::All,
        ] {
            let (k, a, b) = e.parts();
            assert_eq!(
                PurgeEvent::from_parts(k, a.into(), b.into()),
                Some(e.clone())
            );
        }
        assert_eq!(
            PurgeEvent::from_parts("new", String::new(), String::new()),
            None
        );
    }

    #[test]
    fn generation_table_only_goes_up() {
        let mut t = GenerationTable::default();
        let cursor = PurgeCursor {
            history: "h".into(),
            seq: 1,
        };
        let purge = |g| PurgeNotice::Purge {
            record: PurgeRecord {
                seq: 1,
                event: PurgeEvent::Source {
                    site: "s".into(),
                    source: "/a".into(),
                },
                generation: g,
                origin: "n".into(),
            },
            cursor: cursor.clone(),
        };
        assert!(!t.apply(&purge(3)));
        assert!(!t.apply(&purge(2)));
        assert_eq!(t.get("s", "/a"), 3);
        let resync = PurgeNotice::Resync {
            clear_all: true,
            generations: vec![SourceGeneration {
                site: "s".into(),
                source: "/b".into(),
                generation: 7,
            }],
            cursor,
        };
        let PurgeNotice::Resync {
            generations,
            cursor,
            ..
        } = resync.clone()
        else {
            unreachable!()
        };
        let keep = PurgeNotice::Resync {
            clear_all: false,
            generations,
            cursor,
        };
        assert!(!t.apply(&keep));
        assert_eq!(t.get("s", "/b"), 7);
        assert_eq!(t.get("s", "/a"), 3, "raised, never lowered");
        // Everything cached is dropped: the table becomes Redis's (which may have restarted
        // empty and counts from 0 again).
        assert!(t.apply(&resync));
        assert_eq!(t.get("s", "/b"), 7);
        assert_eq!(t.get("s", "/a"), 0);
    }
}
