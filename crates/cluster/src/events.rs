//! The purge fan-out's types (pure): what is purged, how far a node got, what the listener
//! tells the gateway, and the listener's state for `/status`. The Redis side is `purge`.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One purge, as an admin asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeEvent {
    /// One URL as clients request it (every node derives the cache keys with its routing).
    Url(String),
    /// Every variant of one source of one site: the source's generation is bumped.
    Source {
        /// The site's name.
        site: String,
        /// The source URL as the site's routes resolve it.
        source: String,
    },
    /// Everything.
    All,
}

impl PurgeEvent {
    /// Its kind, for metrics.
    pub fn kind(&self) -> PurgeKind {
        match self {
            PurgeEvent::Url(_) => PurgeKind::Url,
            PurgeEvent::Source { .. } => PurgeKind::Source,
            PurgeEvent::All => PurgeKind::All,
        }
    }

    pub(crate) fn parts(&self) -> (&'static str, &str, &str) {
        match self {
            PurgeEvent::Url(url) => ("url", url, ""),
            PurgeEvent::Source { site, source } => ("source", site, source),
            PurgeEvent::All => ("all", "", ""),
        }
    }

    pub(crate) fn from_parts(kind: &str, a: String, b: String) -> Option<Self> {
        match kind {
            "url" => Some(PurgeEvent::Url(a)),
            "source" => Some(PurgeEvent::Source { site: a, source: b }),
            "all" => Some(PurgeEvent::All),
            _ => None,
        }
    }
}

/// Kinds of purge notices, for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeKind {
    /// [`PurgeEvent::Url`].
    Url,
    /// [`PurgeEvent::Source`].
    Source,
    /// [`PurgeEvent::All`].
    All,
    /// A [`PurgeNotice::Resync`].
    Resync,
}

impl PurgeKind {
    /// `url`, `source`, `all` or `resync`.
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeKind::Url => "url",
            PurgeKind::Source => "source",
            PurgeKind::All => "all",
            PurgeKind::Resync => "resync",
        }
    }
}

/// How far a node has applied the fleet's purges: which history (a random id chosen when
/// Redis first records a purge; a Redis that lost its data starts a new one) and the sequence
/// number of the last purge applied. Persist it with the disk cache (its text form is
/// `history:seq`) and give it back to [`Coordinator::purge_listener`] after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PurgeCursor {
    /// The history's id.
    pub history: String,
    /// The last sequence number applied (0: none).
    pub seq: u64,
}

impl fmt::Display for PurgeCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.history, self.seq)
    }
}

impl FromStr for PurgeCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (history, seq) = s
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not a purge cursor (history:seq)"))?;
        let seq = seq
            .parse()
            .map_err(|_| format!("{s:?} is not a purge cursor (history:seq)"))?;
        if history.is_empty() {
            return Err(format!("{s:?} has an empty history"));
        }
        Ok(Self {
            history: history.to_string(),
            seq,
        })
    }
}

/// A purge as recorded by the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRecord {
    /// Its sequence number in the history.
    pub seq: u64,
    /// What was purged.
    pub event: PurgeEvent,
    /// For [`PurgeEvent::Source`]: the source's new generation (0 for the other kinds).
    pub generation: u64,
    /// The node that published it.
    pub origin: String,
}

/// The current generation of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGeneration {
    /// The site's name.
    pub site: String,
    /// The source URL.
    pub source: String,
    /// Its generation (how often it was purged).
    pub generation: u64,
}

/// What the listener tells the gateway, in order. Applying a notice twice is harmless (purges
/// are idempotent, generations only go up), so a node may also apply its own purges at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeNotice {
    /// Sent on every (re)connection, before any [`PurgeNotice::Purge`]: the generations of
    /// every purged source, and whether the purges missed cannot be known (no cursor was given,
    /// the log no longer reaches back to it, or Redis lost its data).
    ///
    /// - `clear_all: false`: make sure no variant older than these generations is served (a
    ///   gateway that mirrors Redis's counts raises its own to them; imgforge, which keeps its
    ///   own counts, bumps a source whose count here is newer than what it saw).
    /// - `clear_all: true`: drop every cached entry of every tier. A gateway that mirrors
    ///   Redis's counts must then *replace* its table (after Redis lost its data its counts
    ///   restart from 0); one that keeps its own counts keeps them.
    Resync {
        /// Drop every cached entry of every tier.
        clear_all: bool,
        /// Every purged source's generation.
        generations: Vec<SourceGeneration>,
        /// Persist this once the notice is applied.
        cursor: PurgeCursor,
    },
    /// One purge to apply to the local tiers.
    Purge {
        /// The purge.
        record: PurgeRecord,
        /// Persist this once the purge is applied.
        cursor: PurgeCursor,
    },
}

impl PurgeNotice {
    /// The cursor to persist once this notice is applied.
    pub fn cursor(&self) -> &PurgeCursor {
        match self {
            PurgeNotice::Resync { cursor, .. } | PurgeNotice::Purge { cursor, .. } => cursor,
        }
    }

    pub(crate) fn kind(&self) -> PurgeKind {
        match self {
            PurgeNotice::Resync { .. } => PurgeKind::Resync,
            PurgeNotice::Purge { record, .. } => record.event.kind(),
        }
    }
}

/// What [`Coordinator::publish_purge`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReceipt {
    /// The purge's place in the history.
    pub cursor: PurgeCursor,
    /// For [`PurgeEvent::Source`]: the source's new generation.
    pub generation: Option<u64>,
}

/// The purge listener's state for `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Whether its Pub/Sub subscription is up.
    pub subscribed: bool,
    /// The cursor of the last notice handed to the gateway.
    pub cursor: Option<PurgeCursor>,
    /// How long ago the listener last confirmed it was up to date with Redis.
    pub synced_ago: Option<Duration>,
    /// The last failure (subscribing or reading), if the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ListenerShared {
    state: Mutex<Option<ListenerState>>,
}

#[derive(Debug)]
pub(crate) struct ListenerState {
    pub(crate) subscribed: bool,
    pub(crate) cursor: Option<PurgeCursor>,
    pub(crate) synced_at: Option<Instant>,
    pub(crate) last_error: Option<String>,
}

impl ListenerShared {
    pub(crate) fn update(&self, f: impl FnOnce(&mut ListenerState)) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let s = g.get_or_insert(ListenerState {
            subscribed: false,
            cursor: None,
            synced_at: None,
            last_error: None,
        });
        f(s);
    }

    pub(crate) fn status(&self) -> Option<ListenerStatus> {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(|s| ListenerStatus {
            subscribed: s.subscribed,
            cursor: s.cursor.clone(),
            synced_ago: s.synced_at.map(|t| t.elapsed()),
            last_error: s.last_error.clone(),
        })
    }
}
