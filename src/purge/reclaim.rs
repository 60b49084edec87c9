//! `purge --reclaim`: after the last batch, outside any batch's transaction and still under the
//! store's lock, gives back the space of what was purged (see [`crate::store::space`]), and
//! reports the space of each table reclaimed before the purge and after.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::info;

use super::Options;
use crate::error::{Error, Result};
use crate::store::space::{self, Reclaim, Space, StoreSpace};
use crate::store::{limit_session, Backend, DbConnection};

/// A table's (or the SQLite file's) space before the purge and after the reclaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SpaceChange {
    pub before: Space,
    pub after: Space,
}

/// What a reclaim gave back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReclaimReport {
    pub reclaim: Reclaim,
    /// By table reclaimed (PostgreSQL, MySQL).
    pub tables: BTreeMap<String, SpaceChange>,
    /// The SQLite file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<SpaceChange>,
    /// How much the database's files shrank: given back to the filesystem.
    pub bytes_returned: u64,
    /// Free inside the files afterwards, which the database reuses for new rows: MySQL's
    /// `DATA_FREE` and SQLite's free pages after the reclaim; on PostgreSQL the dead rows'
    /// share of the tables before `VACUUM` made it reusable, estimated from `n_dead_tup`.
    pub bytes_reusable: u64,
    pub duration_ms: u64,
}

impl ReclaimReport {
    /// Each table's change, or the file's as [`space::FILE`].
    pub fn parts(&self) -> impl Iterator<Item = (&str, &SpaceChange)> {
        let file = self.file.iter().map(|file| (space::FILE, file));
        file.chain(self.tables.iter().map(|(table, change)| (table.as_str(), change)))
    }

    /// The change of all of it: the tables reclaimed, or the file.
    pub fn total(&self) -> SpaceChange {
        SpaceChange {
            before: self.parts().map(|(_, change)| change.before).sum(),
            after: self.parts().map(|(_, change)| change.after).sum(),
        }
    }
}

/// How the reclaim is bounded: the purge's own settings.
pub(crate) struct Bounds<'a> {
    /// The deadline and the stop signal.
    pub options: &'a Options,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    /// The batches the purge committed, for the report of a stop.
    pub batches: u64,
}

/// Reclaims `tables` (on SQLite, the file), each statement bounded by what is left of the
/// purge's time, a stop signal heard between two; `before` is their space before the purge.
pub(crate) fn reclaim(
    conn: &mut DbConnection,
    tables: &[&str],
    reclaim: Reclaim,
    bounds: &Bounds,
    before: &StoreSpace,
) -> Result<ReclaimReport> {
    let started = Instant::now();
    let deadline = bounds.options.deadline;
    space::flush_statistics(conn)?;
    // PostgreSQL's figure of the space VACUUM makes reusable: its dead rows, before it.
    let dead = match conn.backend() {
        Backend::Postgresql => Some(space::measure(conn, tables)?.total().free_bytes),
        _ => None,
    };
    let targets = space::targets(conn.backend(), tables);
    for (done, target) in targets.iter().enumerate() {
        if let Some(signal) = bounds.options.stopped_by() {
            return Err(Error::Interrupted { signal, batches: bounds.batches });
        }
        let not_finished = || Error::ReclaimNotFinished { done, of: targets.len() };
        // Rounded up to whole milliseconds, as the timeouts are set: a timeout that fires
        // means the deadline has passed.
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let left = left.map(|left| Duration::from_millis(left.as_millis() as u64 + 1));
        let statement_timeout = match left {
            Some(left) if left <= Duration::from_millis(1) => return Err(not_finished()),
            Some(left) if bounds.statement_timeout.is_zero() => left,
            Some(left) => left.min(bounds.statement_timeout),
            None => bounds.statement_timeout,
        };
        limit_session(conn, bounds.lock_timeout, statement_timeout)?;
        info!(%target, ?reclaim, "reclaiming");
        let statement_started = Instant::now();
        space::reclaim(conn, *target, reclaim).map_err(|e| match e {
            _ if deadline.is_some_and(|d| Instant::now() >= d) => not_finished(),
            e @ Error::ReclaimStopped { .. } => e,
            e => Error::ReclaimStopped { reason: format!("{target}: {e}") },
        })?;
        info!(%target, duration_ms = statement_started.elapsed().as_millis() as u64, "reclaimed");
    }
    // The purge's own bounds again, for the measure that follows.
    limit_session(conn, bounds.lock_timeout, bounds.statement_timeout)?;
    let after = space::measure(conn, tables)?;
    let change = |before: Option<&Space>, after: &Space| SpaceChange {
        before: before.copied().unwrap_or_default(),
        after: *after,
    };
    let report_tables: BTreeMap<String, SpaceChange> = after
        .tables
        .iter()
        .map(|(table, space)| (table.clone(), change(before.tables.get(table), space)))
        .collect();
    let file = after.file.as_ref().map(|space| change(before.file.as_ref(), space));
    let mut report = ReclaimReport {
        reclaim,
        tables: report_tables,
        file,
        bytes_returned: 0,
        bytes_reusable: 0,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let total = report.total();
    report.bytes_returned = total.before.bytes.saturating_sub(total.after.bytes);
    report.bytes_reusable = dead.unwrap_or(total.after.free_bytes);
    Ok(report)
}
