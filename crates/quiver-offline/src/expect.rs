//! A view's expectations, checked on the rows as they stream into the offline writers (the
//! scan that writes the window, no second pass) and on pushed rows.
//!
//! A [`Checker`] is compiled once per window from the view's expectations and the offline
//! layout's schema. Every writer partition tallies its own batches (a lock per partition, so
//! writers do not wait on each other); `unique` keeps one set of 128-bit fingerprints of the
//! checked columns for the whole window (two vectorized column hashes under independent
//! random seeds), its memory reserved in the session's pool so a window too large for the
//! memory limit fails with the limit's message instead of growing without bound. Window
//! checks (`rows`, `freshness`) are judged when the window ends.
//!
//! Under `on_failure: fail` the materialization asks [`Checker::verdict`] right before its
//! Delta commit (inside the commit guard): a broken expectation aborts the commit, so table,
//! watermark and online rows stay as they were.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, SchemaRef, TimestampMicrosecondType};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use quiver_core::definitions::{Definitions, Expectation, FeatureView, OnFailure};
use quiver_core::state::{EXAMPLES_KEPT, ExpectationFailure};

use crate::error::{Error, Result};
use crate::exec::lock;
use crate::layout::EVENT_TIMESTAMP;

/// Longest text kept of one value in an example row.
const EXAMPLE_VALUE_CHARS: usize = 120;

/// One expectation, its columns resolved to indexes of the checked batches.
enum Check {
    NotNull(usize),
    Range {
        column: usize,
        min: f64,
        max: f64,
    },
    Allowed {
        column: usize,
        values: HashSet<String>,
    },
    /// `set` indexes [`Checker::unique`].
    Unique {
        columns: Vec<usize>,
        set: usize,
    },
    Rows {
        min: Option<u64>,
        max: Option<u64>,
    },
    Freshness {
        max_age_us: i64,
    },
}

/// What one partition saw.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    rows: u64,
    newest_us: Option<i64>,
    /// Per check: breaking rows and the first examples.
    failing: Vec<u64>,
    examples: Vec<Vec<BTreeMap<String, String>>>,
}

/// A hasher for values that are hashes already: it keeps their low 64 bits.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// The fingerprints of one `unique` check.
struct Seen {
    fingerprints: HashSet<u128, BuildHasherDefault<Prehashed>>,
    reservation: Option<MemoryReservation>,
}

impl Seen {
    /// Resizes the memory reservation (when there is one) to what the fingerprints hold: an
    /// error naming Quiver's memory limit when the pool cannot give it.
    fn account(&mut self, view: &str) -> Result<()> {
        if let Some(r) = &mut self.reservation {
            let bytes = self.fingerprints.capacity() * (std::mem::size_of::<u128>() + 1);
            r.try_resize(bytes).map_err(|e| {
                Error::Memory(format!(
                    "checking unique of feature view '{view}' over {} rows: {e}",
                    self.fingerprints.len()
                ))
            })?;
        }
        Ok(())
    }
}

/// The expectations of one view over one window (or push).
pub struct Checker {
    view: String,
    on_failure: OnFailure,
    expectations: Vec<Expectation>,
    checks: Vec<Check>,
    /// Join keys and event time: what identifies an example row.
    identity: Vec<usize>,
    schema: SchemaRef,
    parts: Vec<Mutex<Tally>>,
    unique: Vec<Mutex<Seen>>,
    /// The two seeds of `unique`'s fingerprints, drawn per checker, and the numbers they
    /// were made from (executors checking a window's partitions use the same ones).
    seeds: (RandomState, RandomState),
    seed_values: (u64, u64),
}

/// What one partition of a [`Checker`] saw, as it travels from an executor to the process
/// that merges it ([`Checker::export`], [`Checker::absorb`]).
pub struct CheckerPart {
    /// The partition's tally, as JSON.
    pub tally: String,
    /// The fingerprints of each `unique` check, 16 bytes each (little-endian), each set
    /// preceded by its count as 8 bytes.
    pub fingerprints: Vec<u8>,
}

impl Checker {
    /// The checker of `view`'s expectations over batches of `schema` (the offline layout),
    /// `partitions` writers feeding it; `row_checks_only` leaves out `rows` and `freshness`
    /// (a push has no window). `pool` accounts the memory of `unique`. `None` when there is
    /// nothing to check.
    pub fn new(
        defs: &Definitions,
        view: &FeatureView,
        schema: &SchemaRef,
        partitions: usize,
        row_checks_only: bool,
        pool: Option<&Arc<dyn MemoryPool>>,
    ) -> Result<Option<Self>> {
        let seeds = (random_seed(), random_seed());
        Self::seeded(defs, view, schema, partitions, row_checks_only, pool, seeds)
    }

    /// [`Checker::new`] with `unique`'s fingerprints made from `seed_values` (another
    /// checker's [`Checker::seed_values`]), so the two checkers' fingerprints can be merged.
    pub fn seeded(
        defs: &Definitions,
        view: &FeatureView,
        schema: &SchemaRef,
        partitions: usize,
        row_checks_only: bool,
        pool: Option<&Arc<dyn MemoryPool>>,
        seed_values: (u64, u64),
    ) -> Result<Option<Self>> {
        let expectations: Vec<Expectation> =
            view.expectations.iter().filter(|e| !row_checks_only || e.is_row_check()).cloned().collect();
        if expectations.is_empty() {
            return Ok(None);
        }
        let index = |name: &str| {
            schema.index_of(name).map_err(|_| {
                Error::Schema(format!(
                    "feature view '{}': an expectation checks column '{name}', which the view's rows do not have",
                    view.name
                ))
            })
        };
        let mut checks = Vec::new();
        let mut unique = Vec::new();
        for e in &expectations {
            checks.push(match e {
                Expectation::NotNull { column } => Check::NotNull(index(column)?),
                Expectation::Range { column, min, max } => Check::Range {
                    column: index(column)?,
                    min: min.map_or(f64::NEG_INFINITY, |b| b.0),
                    max: max.map_or(f64::INFINITY, |b| b.0),
                },
                Expectation::Allowed { column, values } => {
                    Check::Allowed { column: index(column)?, values: values.iter().cloned().collect() }
                }
                Expectation::Unique { columns } => {
                    let columns = columns.iter().map(|c| index(c)).collect::<Result<Vec<_>>>()?;
                    let reservation = pool.map(|p| {
                        MemoryConsumer::new(format!("expectation {e} of view {}", view.name)).register(p)
                    });
                    unique.push(Mutex::new(Seen { fingerprints: HashSet::default(), reservation }));
                    Check::Unique { columns, set: unique.len() - 1 }
                }
                Expectation::Rows { min, max } => Check::Rows { min: *min, max: *max },
                Expectation::Freshness { max_age } => Check::Freshness {
                    max_age_us: i64::try_from(max_age.seconds())
                        .unwrap_or(i64::MAX / 1_000_000)
                        .saturating_mul(1_000_000),
                },
            });
        }
        let mut identity: Vec<usize> =
            defs.join_keys(view).iter().filter_map(|k| schema.index_of(&k.name).ok()).collect();
        identity.extend(schema.index_of(EVENT_TIMESTAMP).ok());
        let parts = (0..partitions.max(1))
            .map(|_| {
                Mutex::new(Tally {
                    failing: vec![0; checks.len()],
                    examples: vec![Vec::new(); checks.len()],
                    ..Tally::default()
                })
            })
            .collect();
        Ok(Some(Checker {
            view: view.name.clone(),
            on_failure: view.on_failure,
            expectations,
            checks,
            identity,
            schema: schema.clone(),
            parts,
            unique,
            seeds: (RandomState::with_seed(seed_values.0), RandomState::with_seed(seed_values.1)),
            seed_values,
        }))
    }

    /// Checks one batch written by `partition`.
    pub fn observe(&self, partition: usize, batch: &RecordBatch) -> Result<()> {
        let mut tally = lock(&self.parts[partition % self.parts.len()]);
        tally.rows += batch.num_rows() as u64;
        if let Some(column) = batch.column_by_name(EVENT_TIMESTAMP)
            && let Some(times) = column.as_primitive_opt::<TimestampMicrosecondType>()
            && let Some(newest) = datafusion::arrow::compute::max(times)
        {
            tally.newest_us = Some(tally.newest_us.map_or(newest, |n| n.max(newest)));
        }
        for (i, check) in self.checks.iter().enumerate() {
            let failing = self.failing_rows(check, batch)?;
            if failing.is_empty() {
                continue;
            }
            tally.failing[i] += failing.len() as u64;
            let room = EXAMPLES_KEPT.saturating_sub(tally.examples[i].len());
            for &row in failing.iter().take(room) {
                let example = self.example(check, batch, row)?;
                tally.examples[i].push(example);
            }
        }
        Ok(())
    }

    /// The rows of `batch` that break `check` (row checks only).
    fn failing_rows(&self, check: &Check, batch: &RecordBatch) -> Result<Vec<usize>> {
        Ok(match check {
            Check::NotNull(c) => {
                let column = batch.column(*c);
                if column.null_count() == 0 {
                    return Ok(Vec::new());
                }
                (0..column.len()).filter(|&i| column.is_null(i)).collect()
            }
            Check::Range { column, min, max } => {
                let numbers = cast(batch.column(*column), &DataType::Float64)?;
                let numbers = numbers.as_primitive::<Float64Type>();
                let (min, max) = (*min, *max);
                // NaN compares false both ways: it lies outside every range.
                (0..numbers.len())
                    .filter(|&i| numbers.is_valid(i) && !(numbers.value(i) >= min && numbers.value(i) <= max))
                    .collect()
            }
            Check::Allowed { column, values } => {
                let column = batch.column(*column);
                if let Some(flags) = column.as_boolean_opt() {
                    (0..flags.len())
                        .filter(|&i| {
                            flags.is_valid(i)
                                && !values.contains(if flags.value(i) { "true" } else { "false" })
                        })
                        .collect()
                } else {
                    let text = cast(column, &DataType::Utf8)?;
                    let text = text.as_string::<i32>();
                    (0..text.len()).filter(|&i| text.is_valid(i) && !values.contains(text.value(i))).collect()
                }
            }
            Check::Unique { columns, set } => {
                let arrays: Vec<ArrayRef> = columns.iter().map(|c| batch.column(*c).clone()).collect();
                let mut high = vec![0u64; batch.num_rows()];
                let mut low = vec![0u64; batch.num_rows()];
                create_hashes(&arrays, &self.seeds.0, &mut high)?;
                create_hashes(&arrays, &self.seeds.1, &mut low)?;
                let mut seen = lock(&self.unique[*set]);
                let mut failing = Vec::new();
                for (i, (h, l)) in high.iter().zip(&low).enumerate() {
                    // Two rows with different values share both hashes with a chance of about
                    // 2^-128 per pair.
                    if !seen.fingerprints.insert((u128::from(*h) << 64) | u128::from(*l)) {
                        failing.push(i);
                    }
                }
                seen.account(&self.view)?;
                failing
            }
            Check::Rows { .. } | Check::Freshness { .. } => Vec::new(),
        })
    }

    /// Row `row` of `batch` as text: its join keys, event time and the checked columns.
    fn example(&self, check: &Check, batch: &RecordBatch, row: usize) -> Result<BTreeMap<String, String>> {
        let checked: Vec<usize> = match check {
            Check::NotNull(c) | Check::Range { column: c, .. } | Check::Allowed { column: c, .. } => vec![*c],
            Check::Unique { columns, .. } => columns.clone(),
            Check::Rows { .. } | Check::Freshness { .. } => Vec::new(),
        };
        let options = FormatOptions::default().with_null("null");
        let mut out = BTreeMap::new();
        for &c in self.identity.iter().chain(&checked) {
            let formatter = ArrayFormatter::try_new(batch.column(c).as_ref(), &options)?;
            let mut text = formatter.value(row).to_string();
            if text.chars().count() > EXAMPLE_VALUE_CHARS {
                text = text.chars().take(EXAMPLE_VALUE_CHARS).chain(['…']).collect();
            }
            out.insert(self.schema.field(c).name().clone(), text);
        }
        Ok(out)
    }

    /// Every broken expectation, after the last batch; `window_end` judges `freshness`.
    pub fn failures(&self, window_end: Option<DateTime<Utc>>) -> Vec<ExpectationFailure> {
        let mut rows = 0u64;
        let mut newest: Option<i64> = None;
        let mut failing = vec![0u64; self.checks.len()];
        let mut examples: Vec<Vec<BTreeMap<String, String>>> = vec![Vec::new(); self.checks.len()];
        for part in &self.parts {
            let tally = lock(part);
            rows += tally.rows;
            newest = match (newest, tally.newest_us) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            for i in 0..self.checks.len() {
                failing[i] += tally.failing[i];
                let room = EXAMPLES_KEPT.saturating_sub(examples[i].len());
                examples[i].extend(tally.examples[i].iter().take(room).cloned());
            }
        }
        let mut out = Vec::new();
        for (i, (check, expectation)) in self.checks.iter().zip(&self.expectations).enumerate() {
            let failure =
                |failing_rows: Option<u64>, observed: Option<String>, examples: Vec<_>| ExpectationFailure {
                    expectation: expectation.to_string(),
                    failing_rows,
                    rows,
                    observed,
                    examples,
                };
            match check {
                Check::Rows { min, max }
                    if min.is_some_and(|m| rows < m) || max.is_some_and(|m| rows > m) =>
                {
                    out.push(failure(None, Some(format!("the window holds {rows} rows")), Vec::new()));
                }
                Check::Rows { .. } => {}
                Check::Freshness { max_age_us } => {
                    let Some(end) = window_end else { continue };
                    let end_us = end.timestamp_micros();
                    match newest {
                        None => out.push(failure(None, Some("the window holds no rows".into()), Vec::new())),
                        Some(t) if end_us.saturating_sub(t) > *max_age_us => {
                            let age = chrono::Duration::microseconds(end_us.saturating_sub(t));
                            let shown = DateTime::<Utc>::from_timestamp_micros(t).map_or_else(
                                || t.to_string(),
                                |d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                            );
                            out.push(failure(
                                None,
                                Some(format!(
                                    "the newest event time, {shown}, is {} old at the window's end",
                                    humanize(age)
                                )),
                                Vec::new(),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                _ if failing[i] > 0 => {
                    out.push(failure(Some(failing[i]), None, std::mem::take(&mut examples[i])))
                }
                _ => {}
            }
        }
        out
    }

    /// Under `on_failure: fail`, an error naming the view and every broken expectation with
    /// its counts; `Ok` when nothing broke or the view only warns.
    pub fn verdict(&self, window_end: Option<DateTime<Utc>>) -> Result<()> {
        if self.on_failure == OnFailure::Warn {
            return Ok(());
        }
        let failures = self.failures(window_end);
        if failures.is_empty() {
            return Ok(());
        }
        Err(Error::Expectations(format!(
            "{}; nothing was committed (the view's on_failure is fail)",
            describe(&self.view, &failures)
        )))
    }

    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// The numbers `unique`'s fingerprints are made from ([`Checker::seeded`]).
    pub fn seed_values(&self) -> (u64, u64) {
        self.seed_values
    }

    /// What `partition` saw: its tally and every fingerprint of each `unique` check (of a
    /// checker that only that partition fed, as on an executor).
    pub fn export(&self, partition: usize) -> Result<CheckerPart> {
        let tally = serde_json::to_string(&*lock(&self.parts[partition % self.parts.len()]))
            .map_err(|e| Error::Internal(format!("encoding expectation results: {e}")))?;
        let mut fingerprints = Vec::new();
        for set in &self.unique {
            let seen = lock(set);
            fingerprints.extend_from_slice(&(seen.fingerprints.len() as u64).to_le_bytes());
            for f in &seen.fingerprints {
                fingerprints.extend_from_slice(&f.to_le_bytes());
            }
        }
        Ok(CheckerPart { tally, fingerprints })
    }

    /// Adds what an executor's checker saw of `partition` ([`Checker::export`], made with
    /// this checker's seeds): its tally, and its fingerprints into this checker's sets; a
    /// fingerprint another partition had already brought is one more row breaking `unique`
    /// (counted, without an example: the row itself stayed on the executor).
    pub fn absorb(&self, partition: usize, part: &CheckerPart) -> Result<()> {
        let bad = |what: &str| Error::Internal(format!("a partition's expectation results: {what}"));
        let tally: Tally = serde_json::from_str(&part.tally).map_err(|e| bad(&e.to_string()))?;
        if tally.failing.len() != self.checks.len() || tally.examples.len() != self.checks.len() {
            return Err(bad("they cover other checks"));
        }
        let mut mine = lock(&self.parts[partition % self.parts.len()]);
        mine.rows += tally.rows;
        mine.newest_us = match (mine.newest_us, tally.newest_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (i, (failing, examples)) in tally.failing.into_iter().zip(tally.examples).enumerate() {
            mine.failing[i] += failing;
            let room = EXAMPLES_KEPT.saturating_sub(mine.examples[i].len());
            mine.examples[i].extend(examples.into_iter().take(room));
        }
        let mut bytes = part.fingerprints.as_slice();
        for (check, check_index) in self.checks.iter().zip(0..) {
            let Check::Unique { set, .. } = check else { continue };
            let (count, rest) =
                bytes.split_first_chunk::<8>().ok_or_else(|| bad("fingerprints cut short"))?;
            let count =
                usize::try_from(u64::from_le_bytes(*count)).map_err(|_| bad("too many fingerprints"))?;
            let len = count
                .checked_mul(16)
                .filter(|n| *n <= rest.len())
                .ok_or_else(|| bad("fingerprints cut short"))?;
            let (these, rest) = rest.split_at(len);
            bytes = rest;
            let mut seen = lock(&self.unique[*set]);
            for chunk in these.chunks_exact(16) {
                let mut f = [0u8; 16];
                f.copy_from_slice(chunk);
                if !seen.fingerprints.insert(u128::from_le_bytes(f)) {
                    mine.failing[check_index] += 1;
                }
            }
            seen.account(&self.view)?;
        }
        if !bytes.is_empty() {
            return Err(bad("fingerprints of more checks than the view has"));
        }
        Ok(())
    }
}

/// `feature view 'v' broke 2 expectations: a: 3 of 10 rows break it; b: ...`.
pub fn describe(view: &str, failures: &[ExpectationFailure]) -> String {
    let n = failures.len();
    let list: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!(
        "feature view '{view}' broke {n} expectation{}: {}",
        if n == 1 { "" } else { "s" },
        list.join("; ")
    )
}

/// `4h 12m`, `35s`: a duration for messages.
fn humanize(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
        .iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() { "0s".into() } else { parts.join(" ") }
}

/// A seed no one can guess ahead of a run (rows crafted to collide would need it).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}
