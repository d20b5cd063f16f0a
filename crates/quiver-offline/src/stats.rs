//! Statistics of every materialized window, per feature, gathered from the rows as they
//! stream into the offline writers (the same observer as the expectations: no second pass).
//!
//! Each writer partition keeps, per feature, a tally that costs a few vectorized passes per
//! batch: counts of rows and nulls; a HyperLogLog of the values' hashes for the distinct
//! count; for numbers the exact min and max, mean and variance (merged with Chan's formula),
//! and a uniform reservoir sample (Vitter's algorithm L, [`SAMPLE`] values, seeded) for the
//! quantiles and the histogram; for strings and booleans a Misra-Gries summary of the most
//! frequent values. At the end the partitions' tallies are merged into one
//! [`FeatureStatistics`] per feature: each sampled value weighs the rows its partition saw
//! per sampled value, so while a partition holds at most [`SAMPLE`] values its quantiles and
//! histogram are exact, and beyond that a quantile's rank is off by about
//! `sqrt(q (1 - q) / SAMPLE)` (under 0.4 % at the median; within 2 % at four standard
//! deviations).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use quiver_core::definitions::FeatureView;
use quiver_core::dtype::DType;
use quiver_core::state::{FeatureStatistics, Histogram, QUANTILES};
use quiver_sample::rng::SplitMix64;

use crate::error::{Error, Result};
use crate::exec::lock;

/// Values sampled per feature and writer partition.
pub const SAMPLE: usize = 16_384;
/// HyperLogLog registers: 2^12 = 4 096, a standard error of 1.04 / 64 ≈ 1.6 %.
const HLL_BITS: u32 = 12;
/// Bins of a number histogram.
const BINS: usize = 20;
/// Values a Misra-Gries summary tracks per partition, and how many are reported.
const TRACKED: usize = 256;
const TOP: usize = 10;

/// The fixed hash of the distinct counts (the same in every process, so counts repeat).
const HASH: QualityRandomState = QualityRandomState::with_seed(0x0051_7569_7665_7221);

/// How a feature is summarized, from its declared type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Flag,
    /// Bytes and timestamps: counts and distinct values.
    Plain,
    /// Lists: counts only.
    List,
}

fn kind(dtype: &DType) -> Kind {
    match dtype {
        DType::Int32 | DType::Int64 | DType::Float32 | DType::Float64 => Kind::Number,
        DType::String => Kind::Text,
        DType::Bool => Kind::Flag,
        DType::Bytes | DType::Timestamp => Kind::Plain,
        DType::List(_) => Kind::List,
    }
}

/// A uniform sample of a stream of numbers (algorithm L).
pub(crate) struct Reservoir {
    pub(crate) values: Vec<f64>,
    /// Values offered so far.
    seen: u64,
    /// The (0-based) stream position of the next value to take once the reservoir is full.
    next: u64,
    w: f64,
    rng: SplitMix64,
}

impl Reservoir {
    pub(crate) fn new(seed: u64) -> Self {
        Reservoir { values: Vec::new(), seen: 0, next: 0, w: 1.0, rng: SplitMix64::new(seed) }
    }

    /// A number in (0, 1).
    fn open_unit(&mut self) -> f64 {
        loop {
            let u = self.rng.unit();
            if u > 0.0 {
                return u;
            }
        }
    }

    fn skip(&mut self) {
        self.w *= (self.open_unit().ln() / SAMPLE as f64).exp();
        let gap = (self.open_unit().ln() / (1.0 - self.w).ln()).floor();
        self.next += 1 + if gap.is_finite() && gap > 0.0 { gap.min(u64::MAX as f64 / 2.0) as u64 } else { 0 };
    }

    pub(crate) fn offer(&mut self, values: &[f64]) {
        let start = self.seen;
        let end = start + values.len() as u64;
        let mut at = start;
        while self.values.len() < SAMPLE && at < end {
            self.values.push(values[(at - start) as usize]);
            at += 1;
            if self.values.len() == SAMPLE {
                self.next = at;
                self.skip();
                self.next -= 1;
            }
        }
        while self.values.len() == SAMPLE && self.next < end {
            if self.next >= at {
                let slot = self.rng.below(SAMPLE as u64) as usize;
                self.values[slot] = values[(self.next - start) as usize];
            }
            self.skip();
        }
        self.seen = end;
    }
}

/// What one partition saw of one feature.
struct Partial {
    count: u64,
    nulls: u64,
    registers: Vec<u8>,
    non_finite: u64,
    /// Finite values: how many, their mean and sum of squared deviations, min and max.
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    sample: Reservoir,
    /// Misra-Gries counters.
    top: HashMap<String, u64>,
}

impl Partial {
    fn new(kind: Kind, seed: u64) -> Self {
        Partial {
            count: 0,
            nulls: 0,
            registers: if kind == Kind::List { Vec::new() } else { vec![0; 1 << HLL_BITS] },
            non_finite: 0,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sample: Reservoir::new(seed),
            top: HashMap::new(),
        }
    }

    fn add_hashes(&mut self, column: &ArrayRef) -> Result<()> {
        let mut hashes = vec![0u64; column.len()];
        create_hashes([column], &HASH, &mut hashes)?;
        for (i, h) in hashes.iter().enumerate() {
            if column.is_valid(i) {
                let register = (h >> (64 - HLL_BITS)) as usize;
                let rank = ((h << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
                if rank > self.registers[register] {
                    self.registers[register] = rank;
                }
            }
        }
        Ok(())
    }

    fn add_numbers(&mut self, column: &ArrayRef) -> Result<()> {
        let numbers = cast(column, &DataType::Float64)?;
        let numbers = numbers.as_primitive::<Float64Type>();
        let finite: Vec<f64> = if numbers.null_count() == 0 {
            numbers.values().iter().copied().filter(|v| v.is_finite()).collect()
        } else {
            numbers.iter().flatten().filter(|v| v.is_finite()).collect()
        };
        self.non_finite += (numbers.len() - numbers.null_count() - finite.len()) as u64;
        if finite.is_empty() {
            return Ok(());
        }
        let n = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / n;
        let m2 = finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        for &v in &finite {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        (self.n, self.mean, self.m2) = combine((self.n, self.mean, self.m2), (finite.len() as u64, mean, m2));
        self.sample.offer(&finite);
        Ok(())
    }

    fn add_text(&mut self, column: &ArrayRef, flags: bool) -> Result<()> {
        if flags {
            let flags = column.as_boolean();
            let trues = flags.true_count() as u64;
            let falses = (flags.len() - flags.null_count()) as u64 - trues;
            for (value, n) in [("true", trues), ("false", falses)] {
                if n > 0 {
                    *self.top.entry(value.to_string()).or_default() += n;
                }
            }
            return Ok(());
        }
        let text = cast(column, &DataType::Utf8)?;
        for value in text.as_string::<i32>().iter().flatten() {
            if let Some(n) = self.top.get_mut(value) {
                *n += 1;
            } else if self.top.len() < TRACKED {
                self.top.insert(value.to_string(), 1);
            } else {
                // Misra-Gries: a new value when the table is full takes one from everyone.
                self.top.retain(|_, n| {
                    *n -= 1;
                    *n > 0
                });
            }
        }
        Ok(())
    }
}

/// Chan's parallel combination of (count, mean, sum of squared deviations).
fn combine(a: (u64, f64, f64), b: (u64, f64, f64)) -> (u64, f64, f64) {
    let (na, ma, sa) = a;
    let (nb, mb, sb) = b;
    if na == 0 {
        return b;
    }
    if nb == 0 {
        return a;
    }
    let n = na + nb;
    let delta = mb - ma;
    let mean = ma + delta * nb as f64 / n as f64;
    let m2 = sa + sb + delta * delta * na as f64 * nb as f64 / n as f64;
    (n, mean, m2)
}

/// The statistics of a view's features over one window.
pub struct Statistics {
    /// Per feature: its name, kind and column index in the batches.
    features: Vec<(String, Kind, usize)>,
    /// Per partition, per feature.
    parts: Vec<Mutex<Vec<Partial>>>,
}

impl Statistics {
    /// Statistics of `view`'s features in batches of `schema` (the offline layout), fed by
    /// `partitions` writers; `seed` makes the samples repeatable.
    pub fn new(
        view: &FeatureView,
        schema: &datafusion::arrow::datatypes::Schema,
        partitions: usize,
        seed: u64,
    ) -> Self {
        let features: Vec<(String, Kind, usize)> = view
            .features
            .iter()
            .filter_map(|f| schema.index_of(&f.name).ok().map(|i| (f.name.clone(), kind(&f.dtype), i)))
            .collect();
        let parts = (0..partitions.max(1) as u64)
            .map(|p| {
                Mutex::new(
                    features
                        .iter()
                        .enumerate()
                        .map(|(i, (_, k, _))| Partial::new(*k, seed ^ (p << 32) ^ i as u64))
                        .collect(),
                )
            })
            .collect();
        Statistics { features, parts }
    }

    /// Adds one batch written by `partition`.
    pub fn observe(&self, partition: usize, batch: &RecordBatch) -> Result<()> {
        let mut partials = lock(&self.parts[partition % self.parts.len()]);
        for ((_, kind, index), partial) in self.features.iter().zip(partials.iter_mut()) {
            let column = batch.column(*index);
            partial.count += column.len() as u64;
            partial.nulls += column.null_count() as u64;
            if *kind != Kind::List {
                partial.add_hashes(column)?;
            }
            match kind {
                Kind::Number => partial.add_numbers(column)?,
                Kind::Text => partial.add_text(column, false)?,
                Kind::Flag => partial.add_text(column, true)?,
                Kind::Plain | Kind::List => {}
            }
        }
        Ok(())
    }

    /// What `partition` saw so far, to carry to the process that merges it
    /// ([`Statistics::absorb`]): the statistics of a window written on a cluster are
    /// gathered by each executor for its partitions and merged by the client.
    pub fn export(&self, partition: usize) -> Result<String> {
        let partials = lock(&self.parts[partition % self.parts.len()]);
        let states: Vec<PartialState> = partials.iter().map(PartialState::from).collect();
        serde_json::to_string(&states).map_err(|e| Error::Internal(format!("encoding statistics: {e}")))
    }

    /// Replaces what `partition` saw with `exported` ([`Statistics::export`] of the same
    /// view's statistics, made with the same partitions and seed).
    pub fn absorb(&self, partition: usize, exported: &str) -> Result<()> {
        let states: Vec<PartialState> = serde_json::from_str(exported)
            .map_err(|e| Error::Internal(format!("decoding a partition's statistics: {e}")))?;
        if states.len() != self.features.len() {
            return Err(Error::Internal(format!(
                "a partition's statistics cover {} features, the view has {}",
                states.len(),
                self.features.len()
            )));
        }
        let partials = states.into_iter().map(Partial::from).collect();
        *lock(&self.parts[partition % self.parts.len()]) = partials;
        Ok(())
    }

    /// Every feature's statistics, after the last batch.
    pub fn finish(&self) -> BTreeMap<String, FeatureStatistics> {
        let parts: Vec<MutexGuard<'_, Vec<Partial>>> = self.parts.iter().map(lock).collect();
        let mut out = BTreeMap::new();
        for (f, (name, kind, _)) in self.features.iter().enumerate() {
            let partials: Vec<&Partial> = parts.iter().map(|p| &p[f]).collect();
            out.insert(name.clone(), merge(*kind, &partials));
        }
        out
    }
}

/// A [`Partial`] as it travels between processes: floats by their bits (min and max start
/// infinite, which JSON numbers cannot hold).
#[derive(serde::Serialize, serde::Deserialize)]
struct PartialState {
    count: u64,
    nulls: u64,
    registers: Vec<u8>,
    non_finite: u64,
    n: u64,
    /// `mean`, `m2`, `min`, `max`, as bits.
    moments: [u64; 4],
    sample: Vec<u64>,
    seen: u64,
    next: u64,
    w: u64,
    rng: u64,
    top: Vec<(String, u64)>,
}

impl From<&Partial> for PartialState {
    fn from(p: &Partial) -> Self {
        PartialState {
            count: p.count,
            nulls: p.nulls,
            registers: p.registers.clone(),
            non_finite: p.non_finite,
            n: p.n,
            moments: [p.mean.to_bits(), p.m2.to_bits(), p.min.to_bits(), p.max.to_bits()],
            sample: p.sample.values.iter().map(|v| v.to_bits()).collect(),
            seen: p.sample.seen,
            next: p.sample.next,
            w: p.sample.w.to_bits(),
            rng: p.sample.rng.state(),
            top: p.top.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

impl From<PartialState> for Partial {
    fn from(s: PartialState) -> Self {
        let [mean, m2, min, max] = s.moments.map(f64::from_bits);
        Partial {
            count: s.count,
            nulls: s.nulls,
            registers: s.registers,
            non_finite: s.non_finite,
            n: s.n,
            mean,
            m2,
            min,
            max,
            sample: Reservoir {
                values: s.sample.into_iter().map(f64::from_bits).collect(),
                seen: s.seen,
                next: s.next,
                w: f64::from_bits(s.w),
                rng: SplitMix64::new(s.rng),
            },
            top: s.top.into_iter().collect(),
        }
    }
}

fn merge(kind: Kind, partials: &[&Partial]) -> FeatureStatistics {
    let count = partials.iter().map(|p| p.count).sum();
    let nulls = partials.iter().map(|p| p.nulls).sum();
    let distinct = (kind != Kind::List).then(|| {
        let mut registers = vec![0u8; 1 << HLL_BITS];
        for p in partials {
            for (r, v) in registers.iter_mut().zip(&p.registers) {
                *r = (*r).max(*v);
            }
        }
        hll_estimate(&registers)
    });
    let mut stats = FeatureStatistics {
        count,
        nulls,
        distinct,
        non_finite: partials.iter().map(|p| p.non_finite).sum(),
        min: None,
        max: None,
        mean: None,
        stddev: None,
        quantiles: BTreeMap::new(),
        histogram: None,
    };
    match kind {
        Kind::Number => number_statistics(&mut stats, partials),
        Kind::Text | Kind::Flag => stats.histogram = Some(top_values(partials, count - nulls)),
        Kind::Plain | Kind::List => {}
    }
    stats
}

fn number_statistics(stats: &mut FeatureStatistics, partials: &[&Partial]) {
    let (n, mean, m2) = partials.iter().fold((0, 0.0, 0.0), |acc, p| combine(acc, (p.n, p.mean, p.m2)));
    if n == 0 {
        return;
    }
    let (min, max) = partials
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.min), hi.max(p.max)));
    stats.min = Some(min);
    stats.max = Some(max);
    stats.mean = Some(mean);
    stats.stddev = Some((m2 / n as f64).sqrt());
    // Each sampled value stands for the finite values its partition saw per sample.
    let mut weighted: Vec<(f64, f64)> = partials
        .iter()
        .filter(|p| !p.sample.values.is_empty())
        .flat_map(|p| {
            let weight = p.n as f64 / p.sample.values.len() as f64;
            p.sample.values.iter().map(move |v| (*v, weight))
        })
        .collect();
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = weighted.iter().map(|(_, w)| w).sum();
    for q in QUANTILES {
        // The smallest value whose cumulative weight reaches q of the whole (nearest rank).
        let target = q * total;
        let mut cumulative = 0.0;
        let mut value = max;
        for (v, w) in &weighted {
            cumulative += w;
            if cumulative >= target * (1.0 - 1e-12) {
                value = *v;
                break;
            }
        }
        stats.quantiles.insert(q.to_string(), value);
    }
    let width = (max - min) / BINS as f64;
    let edges: Vec<f64> = (0..=BINS).map(|i| if i == BINS { max } else { min + width * i as f64 }).collect();
    let mut mass = vec![0.0f64; BINS];
    for (v, w) in &weighted {
        let bin = if width > 0.0 { (((v - min) / width) as usize).min(BINS - 1) } else { 0 };
        mass[bin] += w;
    }
    // Whole counts that add up to the number of finite values.
    let mut counts: Vec<u64> = Vec::with_capacity(BINS);
    let mut carried = 0.0;
    let mut given = 0u64;
    for m in &mass {
        carried += m;
        let upto = carried.round() as u64;
        counts.push(upto.saturating_sub(given));
        given = upto.max(given);
    }
    if let Some(last) = counts.last_mut() {
        *last += n.saturating_sub(given);
    }
    stats.histogram = Some(Histogram::Bins { edges, counts });
}

fn top_values(partials: &[&Partial], values: u64) -> Histogram {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for p in partials {
        for (v, n) in &p.top {
            *counts.entry(v.as_str()).or_default() += n;
        }
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(TOP);
    let shown: u64 = ranked.iter().map(|(_, n)| n).sum();
    Histogram::Top {
        values: ranked.into_iter().map(|(v, n)| (v.to_string(), n)).collect(),
        other: values.saturating_sub(shown),
    }
}

/// HyperLogLog's estimate, with linear counting for small cardinalities.
fn hll_estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    estimate.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservoir_keeps_everything_until_full_then_a_uniform_sample() {
        let mut r = Reservoir::new(1);
        let values: Vec<f64> = (0..SAMPLE as u64 * 8).map(|v| v as f64).collect();
        r.offer(&values[..100]);
        assert_eq!(r.values, values[..100]);
        for chunk in values[100..].chunks(5000) {
            r.offer(chunk);
        }
        assert_eq!(r.values.len(), SAMPLE);
        assert_eq!(r.seen, values.len() as u64);
        // Uniform: each eighth of the stream holds about an eighth of the sample.
        let mut per_eighth = [0usize; 8];
        for v in &r.values {
            per_eighth[*v as usize / SAMPLE] += 1;
        }
        for n in per_eighth {
            assert!((n as f64 - SAMPLE as f64 / 8.0).abs() < SAMPLE as f64 / 8.0 * 0.1, "{per_eighth:?}");
        }
    }

    #[test]
    fn partial_moments_combine_to_the_whole() {
        let values: Vec<f64> = (0..1000).map(|i| (i * 37 % 101) as f64 / 7.0).collect();
        let moments = |v: &[f64]| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            (v.len() as u64, mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>())
        };
        let (n, mean, m2) = combine(moments(&values[..313]), moments(&values[313..]));
        let whole = moments(&values);
        assert_eq!(n, whole.0);
        assert!((mean - whole.1).abs() < 1e-9 && (m2 - whole.2).abs() < 1e-6);
    }
}
