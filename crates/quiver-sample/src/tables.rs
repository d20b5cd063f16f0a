//! Row generators for the seven tables of the sample lake.
//!
//! Each table is a small struct holding whatever state must carry from one row to the next,
//! and sees a [`Ctx`] (the validated spec, resolved for that table). Parquet tables implement
//! [`Columns`] and hand out Arrow columns for a range of row indices ([`Generated`] makes
//! them record batches); text tables (CSV, JSON lines) implement [`TextTable`] and print one
//! row at a time. How rows
//! are grouped into batches and files is decided by `crate::write`, and because every row
//! draws from its own random stream (see `crate::rng`) the content does not depend on it.
//!
//! Event timestamps are *stratified*: row `i` of `n` falls in the `i`-th of `n` equal slices
//! of the window, at a random whole second inside it. The whole window is covered evenly,
//! each file holds a contiguous time range (like a lake partitioned by ingestion time), and
//! nothing has to be sorted. `created` timestamps carry a random ingestion lag with
//! microsecond precision.
//!
//! Values follow simple per-entity traits (a driver's base quality, a customer's wealth and
//! embedding centroid, a zone's base demand) plus noise, so the features are not pure noise
//! and models trained on them have something to find.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float32Builder, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Microseconds in one second.
pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Driver ids are `DRIVER_ID_BASE + 1 ..= DRIVER_ID_BASE + drivers`.
pub(crate) const DRIVER_ID_BASE: i64 = 1000;
/// Customer ids are `CUSTOMER_ID_BASE + 1 ..= CUSTOMER_ID_BASE + customers`.
pub(crate) const CUSTOMER_ID_BASE: i64 = 2000;

/// The cities of `driver_city_stats`, with a typical fare in each (same index).
pub(crate) const CITIES: [&str; 6] = ["amsterdam", "berlin", "lisbon", "madrid", "paris", "rome"];
const CITY_BASE_FARE: [f64; 6] = [21.0, 17.5, 12.0, 14.5, 24.0, 16.0];

/// Number of demand zones, `zone_000 ..= zone_049`.
pub(crate) const ZONES: u64 = 50;

/// Vehicle types of `driver_profile`.
pub(crate) const VEHICLE_TYPES: [&str; 5] = ["sedan", "suv", "van", "electric", "hatchback"];

/// Length of every `customer_embeddings.embedding` list.
pub(crate) const EMBEDDING_DIM: usize = 8;

/// Embedding model names: the first half of the window was embedded with v1, the rest v2.
pub(crate) const EMBEDDING_MODELS: [&str; 2] = ["rides-emb-v1", "rides-emb-v2"];

/// One `driver_stats` row in this many repeats the previous row's driver and event
/// timestamp with a later `created` (a corrected record): the tie a point-in-time read must
/// break by created timestamp.
pub(crate) const TIE_ONE_IN: u64 = 50;
/// Each `driver_stats` feature value is null with probability `1 / NULL_ONE_IN`.
pub(crate) const NULL_ONE_IN: u64 = 100;
/// One trip in this many was cancelled: zero distance and duration, a flat fee.
pub(crate) const CANCELLED_ONE_IN: u64 = 200;
const CANCELLATION_FEE: f64 = 2.5;

/// Relative demand by hour of day (percent), for `zone_demand`.
const HOURLY_DEMAND: [u64; 24] = [
    30, 20, 15, 10, 10, 20, 50, 90, 120, 100, 80, 80, //
    90, 85, 80, 85, 100, 130, 140, 110, 90, 80, 60, 45,
];

/// Random stream families: one per table for rows, one per entity kind for traits.
/// Changing a number changes the generated lake.
mod stream {
    pub(super) const DRIVER_STATS: u64 = 1;
    pub(super) const CUSTOMER_PROFILE: u64 = 2;
    pub(super) const DRIVER_CITY_STATS: u64 = 3;
    pub(super) const CUSTOMER_EMBEDDINGS: u64 = 4;
    pub(super) const TRIPS: u64 = 5;
    pub(super) const ZONE_DEMAND: u64 = 6;
    pub(super) const DRIVER_PROFILE: u64 = 7;
    pub(super) const DRIVER_TRAITS: u64 = 101;
    pub(super) const CUSTOMER_TRAITS: u64 = 102;
    pub(super) const ZONE_TRAITS: u64 = 103;
}

/// The spec as one table sees it, already validated (see `SampleSpec::validate`): counts
/// are non-zero and every second of the window is a representable timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) seed: u64,
    pub(crate) drivers: u64,
    pub(crate) customers: u64,
    /// Window start, Unix seconds.
    pub(crate) start_s: i64,
    /// Window length in seconds (`days * 86400`).
    pub(crate) window_s: u64,
    /// Number of rows of this table.
    pub(crate) rows: u64,
}

impl Ctx {
    fn row_rng(&self, stream: u64, row: u64) -> SplitMix64 {
        SplitMix64::for_item(self.seed, stream, row)
    }

    /// Seconds since the window start of row `row`'s event: a random second inside the
    /// row's slice of the window (see the module docs).
    fn event_offset(&self, rng: &mut SplitMix64, row: u64) -> u64 {
        let window = u128::from(self.window_s);
        let rows = u128::from(self.rows.max(1));
        let lo = (u128::from(row) * window / rows) as u64;
        let hi = (u128::from(row + 1) * window / rows) as u64;
        let offset = lo + rng.below(hi.saturating_sub(lo).max(1));
        offset.min(self.window_s - 1)
    }

    /// Unix seconds of a window offset.
    fn unix_seconds(&self, offset: u64) -> i64 {
        // Cannot overflow: the window was checked to end before year 10000.
        self.start_s + offset as i64
    }

    fn driver_id(&self, rng: &mut SplitMix64) -> i64 {
        DRIVER_ID_BASE + 1 + rng.below(self.drivers) as i64
    }

    fn customer_id(&self, rng: &mut SplitMix64) -> i64 {
        CUSTOMER_ID_BASE + 1 + rng.below(self.customers) as i64
    }
}

/// The rows of a Parquet table of the sample, as Arrow columns.
pub(crate) trait Columns {
    /// The table's name (in errors).
    const NAME: &'static str;
    /// The table's columns.
    fn fields() -> Vec<Field>;
    /// The columns of the rows with indices in `rows`, in [`Columns::fields`]' order.
    /// Called with consecutive, increasing ranges.
    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef>;
}

/// A [`Columns`] table with its context and schema: what the writer takes.
pub(crate) struct Generated<T> {
    ctx: Ctx,
    schema: SchemaRef,
    table: T,
}

impl<T: Columns + Default> Generated<T> {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Generated { ctx, schema: Arc::new(Schema::new(T::fields())), table: T::default() }
    }
}

impl<T: Columns> ParquetTable for Generated<T> {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn batch(&mut self, rows: Range<u64>) -> Result<RecordBatch> {
        let columns = self.table.columns(&self.ctx, rows);
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| Error::Internal(format!("building a {} batch: {e}", T::NAME)))
    }
}

/// A table written as Parquet, produced batch by batch.
pub(crate) trait ParquetTable {
    /// The Arrow schema of every batch.
    fn schema(&self) -> SchemaRef;
    /// The rows with indices in `rows`. Called with consecutive, increasing ranges.
    fn batch(&mut self, rows: Range<u64>) -> Result<RecordBatch>;
}

/// A table written as text (CSV or JSON lines), produced row by row.
pub(crate) trait TextTable {
    /// The first line of every file (without line end), if the format has one.
    fn header(&self) -> Option<&'static str>;
    /// Writes row `row` including its line end. Called with consecutive row indices.
    fn write_row<W: Write>(&mut self, row: u64, out: &mut W) -> io::Result<()>;
}

/// `Timestamp(Microsecond, "UTC")`, the type of every Parquet timestamp column.
pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A field of a generated schema. Every column is nullable, as in lakes written by pandas,
/// Spark or pyarrow, so that the sample does not exercise a stricter path than real data.
fn field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

fn micros_array(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn round_to(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

fn maybe_null<T>(rng: &mut SplitMix64, value: T) -> Option<T> {
    if rng.one_in(NULL_ONE_IN) { None } else { Some(value) }
}

/// Stable traits of one driver, the same in every table.
struct DriverTraits {
    /// In `[0.2, 0.9)`: drives conversion rate, trips per day and rating.
    quality: f64,
    /// In `[0.5, 0.95)`: the driver's typical acceptance rate.
    acceptance: f64,
    vehicle: usize,
    years_active: i64,
    home_city: u64,
    /// The driver works in `1..=3` cities starting at `home_city`.
    city_count: u64,
}

fn driver_traits(seed: u64, driver_id: i64) -> DriverTraits {
    let mut rng = SplitMix64::for_item(seed, stream::DRIVER_TRAITS, driver_id as u64);
    DriverTraits {
        quality: 0.2 + 0.7 * rng.unit(),
        acceptance: 0.5 + 0.45 * rng.unit(),
        vehicle: rng.below(VEHICLE_TYPES.len() as u64) as usize,
        years_active: rng.below(15) as i64,
        home_city: rng.below(CITIES.len() as u64),
        city_count: 1 + rng.below(3),
    }
}

/// Stable traits of one customer.
struct CustomerTraits {
    /// In `[0.1, 1.1)`: scales the account balance.
    wealth: f64,
    /// In `[1, 3)`: typical number of passengers.
    passengers: f64,
    /// Lifetime trips before the window starts.
    trips_before: i64,
    /// New trips per day during the window.
    trips_per_day: i64,
    /// Centre of the customer's embeddings, each coordinate in `[-1, 1)`.
    centroid: [f64; EMBEDDING_DIM],
}

fn customer_traits(seed: u64, customer_id: i64) -> CustomerTraits {
    let mut rng = SplitMix64::for_item(seed, stream::CUSTOMER_TRAITS, customer_id as u64);
    let wealth = 0.1 + rng.unit();
    let passengers = 1.0 + 2.0 * rng.unit();
    let trips_before = rng.below(500) as i64;
    let trips_per_day = 1 + rng.below(10) as i64;
    let mut centroid = [0.0; EMBEDDING_DIM];
    for c in &mut centroid {
        *c = 2.0 * rng.unit() - 1.0;
    }
    CustomerTraits { wealth, passengers, trips_before, trips_per_day, centroid }
}

// ---------------------------------------------------------------------------------------
// driver_stats
// ---------------------------------------------------------------------------------------

/// `driver_stats`: hourly-ish driver performance snapshots, with ties and nulls.
#[derive(Default)]
pub(crate) struct DriverStats {
    /// `(driver_id, event µs, created µs)` of the previous row, which a tie row repeats.
    previous: Option<(i64, i64, i64)>,
}

impl Columns for DriverStats {
    const NAME: &'static str = "driver_stats";

    fn fields() -> Vec<Field> {
        vec![
            field("driver_id", DataType::Int64),
            field("event_timestamp", utc_micros()),
            field("created", utc_micros()),
            field("conv_rate", DataType::Float32),
            field("acc_rate", DataType::Float32),
            field("avg_daily_trips", DataType::Int64),
        ]
    }

    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef> {
        let len = (rows.end - rows.start) as usize;
        let mut driver_id = Vec::with_capacity(len);
        let mut event = Vec::with_capacity(len);
        let mut created = Vec::with_capacity(len);
        let mut conv_rate = Vec::with_capacity(len);
        let mut acc_rate = Vec::with_capacity(len);
        let mut avg_daily_trips = Vec::with_capacity(len);
        for row in rows {
            let mut rng = ctx.row_rng(stream::DRIVER_STATS, row);
            let tie = rng.one_in(TIE_ONE_IN);
            let (driver, event_us, created_us) = match self.previous {
                Some((driver, event_us, previous_created)) if tie => {
                    // A correction of the previous record: same key and event time,
                    // created 1 s to 10 min later.
                    let delay = MICROS_PER_SECOND + rng.below(600 * MICROS_PER_SECOND as u64) as i64;
                    (driver, event_us, previous_created + delay)
                }
                _ => {
                    let driver = ctx.driver_id(&mut rng);
                    let offset = ctx.event_offset(&mut rng, row);
                    let event_us = ctx.unix_seconds(offset) * MICROS_PER_SECOND;
                    let lag = rng.below(120 * MICROS_PER_SECOND as u64) as i64;
                    (driver, event_us, event_us + lag)
                }
            };
            self.previous = Some((driver, event_us, created_us));

            let traits = driver_traits(ctx.seed, driver);
            let conv = round_to((traits.quality + (rng.unit() - 0.5) * 0.2).clamp(0.0, 1.0), 1e4);
            let acc = round_to((traits.acceptance + (rng.unit() - 0.5) * 0.1).clamp(0.0, 1.0), 1e4);
            let trips = (5.0 + 30.0 * traits.quality) as i64 + rng.below(11) as i64 - 5;

            driver_id.push(driver);
            event.push(event_us);
            created.push(created_us);
            conv_rate.push(maybe_null(&mut rng, conv as f32));
            acc_rate.push(maybe_null(&mut rng, acc as f32));
            avg_daily_trips.push(maybe_null(&mut rng, trips));
        }
        vec![
            Arc::new(Int64Array::from(driver_id)),
            micros_array(event),
            micros_array(created),
            Arc::new(Float32Array::from(conv_rate)),
            Arc::new(Float32Array::from(acc_rate)),
            Arc::new(Int64Array::from(avg_daily_trips)),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// customer_profile
// ---------------------------------------------------------------------------------------

/// `customer_profile`: balance and habits of customers, the lifetime trip count growing
/// with time.
#[derive(Default)]
pub(crate) struct CustomerProfile;

impl Columns for CustomerProfile {
    const NAME: &'static str = "customer_profile";

    fn fields() -> Vec<Field> {
        vec![
            field("customer_id", DataType::Int64),
            field("event_timestamp", utc_micros()),
            field("created", utc_micros()),
            field("current_balance", DataType::Float32),
            field("avg_passenger_count", DataType::Float32),
            field("lifetime_trip_count", DataType::Int64),
        ]
    }

    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef> {
        let len = (rows.end - rows.start) as usize;
        let mut customer_id = Vec::with_capacity(len);
        let mut event = Vec::with_capacity(len);
        let mut created = Vec::with_capacity(len);
        let mut balance = Vec::with_capacity(len);
        let mut passengers = Vec::with_capacity(len);
        let mut lifetime = Vec::with_capacity(len);
        for row in rows {
            let mut rng = ctx.row_rng(stream::CUSTOMER_PROFILE, row);
            let customer = ctx.customer_id(&mut rng);
            let offset = ctx.event_offset(&mut rng, row);
            let event_us = ctx.unix_seconds(offset) * MICROS_PER_SECOND;
            let lag = rng.below(300 * MICROS_PER_SECOND as u64) as i64;
            let traits = customer_traits(ctx.seed, customer);

            customer_id.push(customer);
            event.push(event_us);
            created.push(event_us + lag);
            balance.push(round_to(1000.0 * traits.wealth * (0.5 + rng.unit()), 100.0) as f32);
            let count = (traits.passengers + (rng.unit() - 0.5) * 0.4).max(1.0);
            passengers.push(round_to(count, 100.0) as f32);
            lifetime.push(traits.trips_before + (offset as i64) * traits.trips_per_day / SECONDS_PER_DAY);
        }
        vec![
            Arc::new(Int64Array::from(customer_id)),
            micros_array(event),
            micros_array(created),
            Arc::new(Float32Array::from(balance)),
            Arc::new(Float32Array::from(passengers)),
            Arc::new(Int64Array::from(lifetime)),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// driver_city_stats
// ---------------------------------------------------------------------------------------

/// `driver_city_stats`: per driver *and city* (a compound key); each driver works in one
/// to three cities.
#[derive(Default)]
pub(crate) struct DriverCityStats;

impl Columns for DriverCityStats {
    const NAME: &'static str = "driver_city_stats";

    fn fields() -> Vec<Field> {
        vec![
            field("driver_id", DataType::Int64),
            field("city", DataType::Utf8),
            field("event_timestamp", utc_micros()),
            field("trips_in_city", DataType::Int64),
            field("avg_fare_in_city", DataType::Float64),
        ]
    }

    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef> {
        let len = (rows.end - rows.start) as usize;
        let mut driver_id = Vec::with_capacity(len);
        let mut city = Vec::with_capacity(len);
        let mut event = Vec::with_capacity(len);
        let mut trips = Vec::with_capacity(len);
        let mut fare = Vec::with_capacity(len);
        for row in rows {
            let mut rng = ctx.row_rng(stream::DRIVER_CITY_STATS, row);
            let driver = ctx.driver_id(&mut rng);
            let traits = driver_traits(ctx.seed, driver);
            let city_index =
                ((traits.home_city + rng.below(traits.city_count)) % CITIES.len() as u64) as usize;
            let offset = ctx.event_offset(&mut rng, row);

            driver_id.push(driver);
            city.push(CITIES[city_index]);
            event.push(ctx.unix_seconds(offset) * MICROS_PER_SECOND);
            trips.push(rng.below(25) as i64);
            fare.push(round_to(CITY_BASE_FARE[city_index] * (0.85 + 0.3 * rng.unit()), 100.0));
        }
        vec![
            Arc::new(Int64Array::from(driver_id)),
            Arc::new(StringArray::from(city)),
            micros_array(event),
            Arc::new(Int64Array::from(trips)),
            Arc::new(Float64Array::from(fare)),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// customer_embeddings
// ---------------------------------------------------------------------------------------

/// `customer_embeddings`: an 8-float embedding per customer, scattered around the
/// customer's centroid, tagged with the model that produced it.
#[derive(Default)]
pub(crate) struct CustomerEmbeddings;

impl Columns for CustomerEmbeddings {
    const NAME: &'static str = "customer_embeddings";

    fn fields() -> Vec<Field> {
        vec![
            field("customer_id", DataType::Int64),
            field("event_timestamp", utc_micros()),
            // A plain List (not FixedSizeList): what pandas / pyarrow lakes usually hold.
            // The item field matches `ListBuilder`'s default ("item", nullable).
            field("embedding", DataType::List(Arc::new(Field::new("item", DataType::Float32, true)))),
            field("embedding_model", DataType::Utf8),
        ]
    }

    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef> {
        let len = (rows.end - rows.start) as usize;
        let mut customer_id = Vec::with_capacity(len);
        let mut event = Vec::with_capacity(len);
        let mut embedding =
            ListBuilder::with_capacity(Float32Builder::with_capacity(len * EMBEDDING_DIM), len);
        let mut model = Vec::with_capacity(len);
        for row in rows {
            let mut rng = ctx.row_rng(stream::CUSTOMER_EMBEDDINGS, row);
            let customer = ctx.customer_id(&mut rng);
            let offset = ctx.event_offset(&mut rng, row);
            let traits = customer_traits(ctx.seed, customer);

            customer_id.push(customer);
            event.push(ctx.unix_seconds(offset) * MICROS_PER_SECOND);
            for centre in traits.centroid {
                let value = round_to(0.9 * centre + 0.2 * (rng.unit() - 0.5), 1e4);
                embedding.values().append_value(value as f32);
            }
            embedding.append(true);
            model.push(EMBEDDING_MODELS[usize::from(offset >= ctx.window_s / 2)]);
        }
        vec![
            Arc::new(Int64Array::from(customer_id)),
            micros_array(event),
            Arc::new(embedding.finish()),
            Arc::new(StringArray::from(model)),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// trips
// ---------------------------------------------------------------------------------------

/// `trips`: raw trip events, input of the SQL-transform view. Some trips are cancelled
/// (zero distance and duration), so divisions in the transform must guard against zero.
#[derive(Default)]
pub(crate) struct Trips;

impl Columns for Trips {
    const NAME: &'static str = "trips";

    fn fields() -> Vec<Field> {
        vec![
            field("trip_id", DataType::Int64),
            field("driver_id", DataType::Int64),
            field("customer_id", DataType::Int64),
            field("event_timestamp", utc_micros()),
            field("distance_km", DataType::Float64),
            field("fare", DataType::Float64),
            field("duration_min", DataType::Float64),
        ]
    }

    fn columns(&mut self, ctx: &Ctx, rows: Range<u64>) -> Vec<ArrayRef> {
        let len = (rows.end - rows.start) as usize;
        let mut trip_id = Vec::with_capacity(len);
        let mut driver_id = Vec::with_capacity(len);
        let mut customer_id = Vec::with_capacity(len);
        let mut event = Vec::with_capacity(len);
        let mut distance = Vec::with_capacity(len);
        let mut fare = Vec::with_capacity(len);
        let mut duration = Vec::with_capacity(len);
        for row in rows {
            let mut rng = ctx.row_rng(stream::TRIPS, row);
            let driver = ctx.driver_id(&mut rng);
            let customer = ctx.customer_id(&mut rng);
            let offset = ctx.event_offset(&mut rng, row);
            let (km, minutes, price) = if rng.one_in(CANCELLED_ONE_IN) {
                (0.0, 0.0, CANCELLATION_FEE)
            } else {
                // Squaring skews the distances short, as in a real city.
                let u = rng.unit();
                let km = round_to(0.5 + 39.5 * u * u, 100.0);
                let speed_kmh = 12.0 + 48.0 * rng.unit();
                let minutes = round_to(km / speed_kmh * 60.0 + 1.0 + 4.0 * rng.unit(), 100.0);
                let price = round_to(CANCELLATION_FEE + 1.15 * km + 0.25 * minutes, 100.0);
                (km, minutes, price)
            };

            trip_id.push(row as i64 + 1);
            driver_id.push(driver);
            customer_id.push(customer);
            event.push(ctx.unix_seconds(offset) * MICROS_PER_SECOND);
            distance.push(km);
            fare.push(price);
            duration.push(minutes);
        }
        vec![
            Arc::new(Int64Array::from(trip_id)),
            Arc::new(Int64Array::from(driver_id)),
            Arc::new(Int64Array::from(customer_id)),
            micros_array(event),
            Arc::new(Float64Array::from(distance)),
            Arc::new(Float64Array::from(fare)),
            Arc::new(Float64Array::from(duration)),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// zone_demand (CSV)
// ---------------------------------------------------------------------------------------

/// `zone_demand`: open requests and surge per zone, following a daily demand curve.
/// Written as CSV with a header; the key is a string (`zone_017`).
pub(crate) struct ZoneDemand {
    ctx: Ctx,
}

impl ZoneDemand {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

impl TextTable for ZoneDemand {
    fn header(&self) -> Option<&'static str> {
        Some("zone_id,event_timestamp,open_requests,surge_multiplier")
    }

    fn write_row<W: Write>(&mut self, row: u64, out: &mut W) -> io::Result<()> {
        let mut rng = self.ctx.row_rng(stream::ZONE_DEMAND, row);
        let zone = rng.below(ZONES);
        let offset = self.ctx.event_offset(&mut rng, row);
        let unix = self.ctx.unix_seconds(offset);
        let base = 20 + SplitMix64::for_item(self.ctx.seed, stream::ZONE_TRAITS, zone).below(100);
        let hour = (unix.rem_euclid(SECONDS_PER_DAY) / 3600) as usize;
        let expected = base * HOURLY_DEMAND[hour] / 100;
        let open_requests = rng.below(expected + 1);
        let pressure = open_requests as f64 / base as f64;
        let surge = round_to((1.0 + pressure * rng.unit()).min(3.0), 100.0);
        // `{:.2}` always prints a decimal point, so readers infer float64 for the column.
        writeln!(out, "zone_{zone:03},{},{open_requests},{surge:.2}", Civil::from_unix(unix).sql())
    }
}

// ---------------------------------------------------------------------------------------
// driver_profile (JSON lines)
// ---------------------------------------------------------------------------------------

/// `driver_profile`: slowly changing driver attributes, written as newline-delimited JSON.
pub(crate) struct DriverProfile {
    ctx: Ctx,
}

impl DriverProfile {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

impl TextTable for DriverProfile {
    fn header(&self) -> Option<&'static str> {
        None
    }

    fn write_row<W: Write>(&mut self, row: u64, out: &mut W) -> io::Result<()> {
        let mut rng = self.ctx.row_rng(stream::DRIVER_PROFILE, row);
        let driver = self.ctx.driver_id(&mut rng);
        let offset = self.ctx.event_offset(&mut rng, row);
        let traits = driver_traits(self.ctx.seed, driver);
        // Now and then a driver is seen with another vehicle.
        let vehicle =
            if rng.one_in(20) { rng.below(VEHICLE_TYPES.len() as u64) as usize } else { traits.vehicle };
        let rating = round_to((3.6 + 1.2 * traits.quality + 0.3 * (rng.unit() - 0.5)).min(5.0), 100.0);
        // Only fixed ASCII strings go in, so no JSON escaping is needed; `{:.2}` keeps a
        // decimal point in every rating so readers infer float64.
        writeln!(
            out,
            r#"{{"driver_id":{driver},"event_timestamp":"{}","vehicle_type":"{}","rating":{rating:.2},"years_active":{}}}"#,
            Civil::from_unix(self.ctx.unix_seconds(offset)).rfc3339(),
            VEHICLE_TYPES[vehicle],
            traits.years_active,
        )
    }
}

// ---------------------------------------------------------------------------------------
// timestamps as text
// ---------------------------------------------------------------------------------------

/// A UTC calendar date and time of day, computed without chrono so that the text output
/// is fast and cannot change with a chrono release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`, valid for the whole proleptic Gregorian calendar.
    pub(crate) fn from_unix(unix: i64) -> Self {
        let days = unix.div_euclid(SECONDS_PER_DAY);
        let second_of_day = unix.rem_euclid(SECONDS_PER_DAY) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (the CSV form; no zone suffix, read as UTC).
    pub(crate) fn sql(self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, the JSON form).
    pub(crate) fn rfc3339(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_matches_chrono() {
        let mut rng = SplitMix64::new(7);
        let min = -62_135_596_800_i64; // 0001-01-01
        let max = 253_402_300_799_i64; // 9999-12-31T23:59:59
        let mut samples = vec![min, max, 0, -1, 951_782_400, 1_767_225_600];
        for _ in 0..20_000 {
            samples.push(min + rng.below((max - min) as u64) as i64);
        }
        for unix in samples {
            let Some(expected) = chrono::DateTime::from_timestamp(unix, 0) else {
                panic!("chrono cannot represent {unix}");
            };
            let civil = Civil::from_unix(unix);
            assert_eq!(civil.sql(), expected.format("%Y-%m-%d %H:%M:%S").to_string(), "{unix}");
            assert_eq!(civil.rfc3339(), expected.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "{unix}");
        }
    }

    #[test]
    fn event_offsets_cover_the_window_in_order_of_rows() {
        for rows in [1_u64, 7, 1000, 5_000_000] {
            let ctx = Ctx { seed: 1, drivers: 1, customers: 1, start_s: 0, window_s: 86_400, rows };
            let probe = [0, rows / 2, rows - 1];
            let mut last = 0;
            for row in probe {
                let offset = ctx.event_offset(&mut ctx.row_rng(0, row), row);
                assert!(offset < ctx.window_s);
                assert!(offset >= last);
                last = offset;
            }
        }
    }
}
