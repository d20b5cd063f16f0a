//! Deterministic generator of Quiver's example ride-hailing lake.
//!
//! [`generate_lake`] writes seven tables under a lake folder: the raw data behind the
//! example feature repository in `feature_defs/rides/`, used by `quiver quickstart`, by
//! tests and by benchmarks. The same [`SampleSpec`] always gives the same rows: the
//! generator uses its own seeded PRNG (see `rng`) and exactly rounded float arithmetic
//! only, so the data does not change across platforms or versions of this crate's
//! dependencies; and with the same dependency versions the files are identical byte for
//! byte.
//!
//! | folder | format | rows (R = `spec.rows`) | columns |
//! |---|---|---|---|
//! | `driver_stats/` | parquet | R | `driver_id` int64, `event_timestamp`, `created`, `conv_rate` float32, `acc_rate` float32, `avg_daily_trips` int64 |
//! | `customer_profile/` | parquet | R / 4 | `customer_id` int64, `event_timestamp`, `created`, `current_balance` float32, `avg_passenger_count` float32, `lifetime_trip_count` int64 |
//! | `driver_city_stats/` | parquet | R / 4 | `driver_id` int64, `city` utf8, `event_timestamp`, `trips_in_city` int64, `avg_fare_in_city` float64 |
//! | `customer_embeddings/` | parquet | R / 20 | `customer_id` int64, `event_timestamp`, `embedding` `list<float32>` (8 values), `embedding_model` utf8 |
//! | `trips/` | parquet | R / 2 | `trip_id` int64, `driver_id` int64, `customer_id` int64, `event_timestamp`, `distance_km` float64, `fare` float64, `duration_min` float64 |
//! | `zone_demand/` | csv with header | R / 10 | `zone_id` (`zone_000`…`zone_049`), `event_timestamp` (`YYYY-MM-DD HH:MM:SS`, UTC), `open_requests` int, `surge_multiplier` float (2 decimals) |
//! | `driver_profile/` | JSON lines | R / 50 | `driver_id` int, `event_timestamp` (RFC 3339, `…Z`), `vehicle_type` string, `rating` float (2 decimals), `years_active` int |
//!
//! Counts are rounded down and at least 1. Parquet timestamps are
//! `Timestamp(Microsecond, "UTC")`; every Parquet column is nullable. Event timestamps are
//! whole seconds spread evenly over `[start, start + days)`; `created` is the event time
//! plus an ingestion lag (microsecond precision), so `created >= event_timestamp`. Driver
//! ids run `1001..=1000 + drivers`, customer ids `2001..=2000 + customers`.
//!
//! On purpose, `driver_stats` holds *ties* — about one row in 50 repeats the previous row's
//! driver and event timestamp with a later `created` (a corrected record) — and about 1% of
//! each of its feature values is null. About one trip in 200 is cancelled: zero distance
//! and duration, a 2.50 flat fare.
//!
//! Each table is split into part files of at most 1,000,000 rows (`part-00000.parquet`,
//! …), produced in batches of 65,536 rows, so a lake of any size is written with bounded
//! memory.
//!
//! Layout: `error` (the error type), `rng` (the PRNG), `tables` (row generators),
//! `write` (files, batches, atomic renames); this file holds the public API.

mod error;
pub mod rng;
mod spine;
mod tables;
mod write;

use std::path::Path;

use chrono::{DateTime, Utc};

pub use crate::error::{Error, Result};
pub use crate::spine::{spine_schema, write_spine};
use crate::tables::{
    Ctx, CustomerEmbeddings, CustomerProfile, DriverCityStats, DriverProfile, DriverStats, Generated, Trips,
    ZoneDemand,
};
pub use crate::write::write_batch;
use crate::write::{Layout, write_parquet, write_text};

/// Seconds in a day.
const SECONDS_PER_DAY: i64 = 86_400;
/// 0001-01-01T00:00:00Z: the earliest window start (text timestamps print 4-digit years).
const EARLIEST_START: i64 = -62_135_596_800;
/// 10000-01-01T00:00:00Z: the latest (exclusive) window end.
const LATEST_END: i64 = 253_402_300_800;
/// Entity counts above this would make ids that no longer fit comfortably in `int64`.
const MAX_ENTITIES: u64 = 1_000_000_000_000;

/// What to generate. Same spec, same lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Rows of `driver_stats`, the biggest table; the other tables scale from it (see
    /// [`SampleSpec::rows_of`]). At least 1.
    pub rows: u64,
    /// Number of drivers, ids `1001..=1000 + drivers`. At least 1.
    pub drivers: u64,
    /// Number of customers, ids `2001..=2000 + customers`. At least 1.
    pub customers: u64,
    /// Length of the event-time window in days. At least 1.
    pub days: u32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Start of the event-time window (inclusive); must be a whole second.
    pub start: DateTime<Utc>,
}

impl Default for SampleSpec {
    /// The small lake of `quiver quickstart`: 20,000 driver-stats rows over 7 days from
    /// 2026-01-01T00:00:00Z, 100 drivers, 500 customers, seed 42.
    fn default() -> Self {
        Self {
            rows: 20_000,
            drivers: 100,
            customers: 500,
            days: 7,
            seed: 42,
            start: DateTime::from_timestamp_nanos(1_767_225_600_000_000_000),
        }
    }
}

impl SampleSpec {
    /// Rows of `table`: `rows` divided by the table's proportion (`driver_stats` 1,
    /// `trips` 2, `customer_profile` and `driver_city_stats` 4, `zone_demand` 10,
    /// `customer_embeddings` 20, `driver_profile` 50), rounded down, at least 1.
    pub fn rows_of(&self, table: Table) -> u64 {
        (self.rows / table.divisor()).max(1)
    }

    /// Checks that the spec describes a lake that can be written; [`generate_lake`] calls
    /// it before touching any file.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] with the reason.
    pub fn validate(&self) -> Result<()> {
        self.window_seconds().map(|_| ())
    }

    /// The event-time window `[start, end)`.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] when the spec is invalid (see [`SampleSpec::validate`]).
    pub fn window(&self) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = self.window_seconds()?;
        let to_time = |secs| {
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| Error::Internal(format!("validated window bound {secs} is out of range")))
        };
        Ok((to_time(start)?, to_time(end)?))
    }

    /// Validates the spec and returns the window as Unix seconds.
    fn window_seconds(&self) -> Result<(i64, i64)> {
        let invalid = |reason: String| Err(Error::InvalidSpec { reason });
        if self.rows == 0 {
            return invalid("rows must be at least 1".into());
        }
        for (name, count) in [("drivers", self.drivers), ("customers", self.customers)] {
            if count == 0 || count > MAX_ENTITIES {
                return invalid(format!("{name} must be in 1..={MAX_ENTITIES}, got {count}"));
            }
        }
        if self.days == 0 {
            return invalid("days must be at least 1".into());
        }
        if self.start.timestamp_subsec_nanos() != 0 {
            return invalid(format!(
                "start {} has a fractional second; the CSV and JSON tables hold whole seconds",
                self.start.to_rfc3339()
            ));
        }
        let start = self.start.timestamp();
        // Cannot overflow: chrono keeps `start` within ±2^43 s and days * 86400 < 2^49.
        let end = start + i64::from(self.days) * SECONDS_PER_DAY;
        if start < EARLIEST_START || end > LATEST_END {
            return invalid(format!(
                "the window {} + {} days must lie within the years 0001..=9999",
                self.start.to_rfc3339(),
                self.days
            ));
        }
        Ok((start, end))
    }
}

/// The file format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Apache Parquet, snappy-compressed.
    Parquet,
    /// CSV with a header row.
    Csv,
    /// Newline-delimited JSON, one object per line.
    Json,
}

impl FileFormat {
    /// The file extension (without dot): `parquet`, `csv` or `json`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// A table of the sample lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `driver_stats/` (parquet).
    DriverStats,
    /// `customer_profile/` (parquet).
    CustomerProfile,
    /// `driver_city_stats/` (parquet).
    DriverCityStats,
    /// `customer_embeddings/` (parquet).
    CustomerEmbeddings,
    /// `trips/` (parquet).
    Trips,
    /// `zone_demand/` (csv).
    ZoneDemand,
    /// `driver_profile/` (json lines).
    DriverProfile,
}

impl Table {
    /// Every table, in the order they are written and listed in [`LakeSummary::files`].
    pub const ALL: [Self; 7] = [
        Self::DriverStats,
        Self::CustomerProfile,
        Self::DriverCityStats,
        Self::CustomerEmbeddings,
        Self::Trips,
        Self::ZoneDemand,
        Self::DriverProfile,
    ];

    /// The table's folder name, relative to the lake.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::DriverStats => "driver_stats",
            Self::CustomerProfile => "customer_profile",
            Self::DriverCityStats => "driver_city_stats",
            Self::CustomerEmbeddings => "customer_embeddings",
            Self::Trips => "trips",
            Self::ZoneDemand => "zone_demand",
            Self::DriverProfile => "driver_profile",
        }
    }

    /// The table's file format.
    pub fn format(self) -> FileFormat {
        match self {
            Self::ZoneDemand => FileFormat::Csv,
            Self::DriverProfile => FileFormat::Json,
            _ => FileFormat::Parquet,
        }
    }

    /// `spec.rows` is divided by this to size the table.
    fn divisor(self) -> u64 {
        match self {
            Self::DriverStats => 1,
            Self::Trips => 2,
            Self::CustomerProfile | Self::DriverCityStats => 4,
            Self::ZoneDemand => 10,
            Self::CustomerEmbeddings => 20,
            Self::DriverProfile => 50,
        }
    }
}

/// What [`generate_lake`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSummary {
    /// Every file written, as (path relative to the lake with `/` separators, rows), in
    /// [`Table::ALL`] order and part order within a table.
    pub files: Vec<(String, u64)>,
    /// Start of the event-time window (inclusive).
    pub window_start: DateTime<Utc>,
    /// End of the event-time window (exclusive).
    pub window_end: DateTime<Utc>,
}

impl LakeSummary {
    /// Rows written for `table`, over all its files.
    pub fn rows(&self, table: Table) -> u64 {
        let prefix = format!("{}/", table.dir_name());
        self.files.iter().filter(|(path, _)| path.starts_with(&prefix)).map(|(_, rows)| rows).sum()
    }

    /// Rows written over all tables.
    pub fn total_rows(&self) -> u64 {
        self.files.iter().map(|(_, rows)| rows).sum()
    }
}

/// Writes the sample lake described by `spec` under `dir` (created if missing), one folder
/// per table (see the crate docs). Files of an earlier generation with the same names are
/// replaced, and higher-numbered part files left by a larger one are removed; nothing else
/// in `dir` is touched.
///
/// # Errors
/// [`Error::InvalidSpec`] before anything is written if the spec is invalid;
/// [`Error::Io`] or [`Error::Parquet`] if writing fails (files already finished stay).
pub fn generate_lake(dir: &Path, spec: &SampleSpec) -> Result<LakeSummary> {
    generate_lake_with(dir, spec, &Layout::default())
}

/// [`generate_lake`] with an explicit file and batch layout (tests use small ones).
fn generate_lake_with(dir: &Path, spec: &SampleSpec, layout: &Layout) -> Result<LakeSummary> {
    let (start_s, end_s) = spec.window_seconds()?;
    let (window_start, window_end) = spec.window()?;
    let mut files = Vec::new();
    for table in Table::ALL {
        let rows = spec.rows_of(table);
        let ctx = Ctx {
            seed: spec.seed,
            drivers: spec.drivers,
            customers: spec.customers,
            start_s,
            window_s: (end_s - start_s) as u64,
            rows,
        };
        let out = &mut files;
        match table {
            Table::DriverStats => {
                write_parquet(dir, table, &mut Generated::<DriverStats>::new(ctx), rows, layout, out)?;
            }
            Table::CustomerProfile => {
                write_parquet(dir, table, &mut Generated::<CustomerProfile>::new(ctx), rows, layout, out)?;
            }
            Table::DriverCityStats => {
                write_parquet(dir, table, &mut Generated::<DriverCityStats>::new(ctx), rows, layout, out)?;
            }
            Table::CustomerEmbeddings => {
                write_parquet(dir, table, &mut Generated::<CustomerEmbeddings>::new(ctx), rows, layout, out)?;
            }
            Table::Trips => write_parquet(dir, table, &mut Generated::<Trips>::new(ctx), rows, layout, out)?,
            Table::ZoneDemand => {
                write_text(dir, table, &mut ZoneDemand::new(ctx), rows, layout, out)?;
            }
            Table::DriverProfile => {
                write_text(dir, table, &mut DriverProfile::new(ctx), rows, layout, out)?;
            }
        }
    }
    Ok(LakeSummary { files, window_start, window_end })
}

#[cfg(test)]
mod tests;
