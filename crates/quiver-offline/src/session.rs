//! The DataFusion session every offline job runs in: a memory limit that sorts and other
//! large operators spill under (instead of the process being killed), spill files in a
//! temporary folder, and DataFusion's own options overridable from the environment (which
//! the caller reads: the library reads no environment itself).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

/// Default memory limit for offline jobs: 2 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// Rows per batch in offline jobs (DataFusion's default is 8 192). A sort of many columns
/// sorts each input batch, then merges the sorted batches: with 64 k-row batches the merge
/// has an eighth of the inputs of the default's, and larger batches cost more in memory than
/// they save in merging (the materialization workload of BENCHMARKS.md measures it).
/// Memory limits under 512 MiB get smaller batches: [`batch_rows`].
pub const BATCH_ROWS: usize = 65_536;

/// Fewest rows per batch whatever the memory limit.
const MIN_BATCH_ROWS: usize = 1024;

/// Rows per batch under `memory_limit`: [`BATCH_ROWS`], or fewer when a batch of 128-byte
/// rows would be more than a sixty-fourth of the pool (a power of two, at least
/// [`MIN_BATCH_ROWS`]). Every operator holds a few batches per partition and a training
/// set runs several sorts and merges at once: with 64 k-row batches a 64 MiB pool seated a
/// sort's two runs in no partition's share.
pub fn batch_rows(memory_limit: usize) -> usize {
    let fit = memory_limit / 64 / 128;
    if fit >= BATCH_ROWS {
        return BATCH_ROWS;
    }
    // The largest power of two not above `fit`.
    let rows = if fit == 0 { 1 } else { 1usize << (usize::BITS - 1 - fit.leading_zeros()) };
    rows.max(MIN_BATCH_ROWS)
}

/// DataFusion options an operator set as environment variables (`DATAFUSION_…`, the option
/// upper-cased with dots as underscores), collected by the program at its start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionOverrides(BTreeMap<String, String>);

impl SessionOverrides {
    /// The `DATAFUSION_…` variables among `vars` (e.g. `std::env::vars()`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        SessionOverrides(vars.into_iter().filter(|(name, _)| name.starts_with("DATAFUSION_")).collect())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A session whose operators together use at most `memory_limit` bytes before spilling,
/// with the operator's DataFusion options applied.
pub fn offline_session(memory_limit: usize, overrides: &SessionOverrides) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        // Fair: several spilling operators (one sort per view) each get a share instead of
        // the first one starving the others.
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
        .with_cache_manager(fresh_listings())
        .build_arc()?;
    let config = offline_config(memory_limit, |name| overrides.get(name))?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// DataFusion's caches with the listing cache off. That cache keeps a folder's first
/// listing for the life of the process: a server would never see the files its lake gains
/// after its first run, and would read a replaced file at its old size. Each run lists the
/// lake afresh; footers and statistics stay cached, checked against each file's size and
/// modification time from that listing.
pub fn fresh_listings() -> CacheManagerConfig {
    CacheManagerConfig::default().with_list_files_cache_limit(0)
}

/// What one of a session's DataFusion caches holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheUsage {
    /// `file_metadata` (Parquet footers and page indexes) or `file_statistics`.
    pub cache: &'static str,
    pub bytes: usize,
    /// The most it holds before dropping the least recently used entries.
    pub limit: usize,
}

/// The caches a long-lived session fills as it reads files (the listing cache is off:
/// [`fresh_listings`]). Both are bounded, so a server's memory grows with them only until
/// they are full.
pub fn cache_usage(ctx: &SessionContext) -> Vec<CacheUsage> {
    let manager = &ctx.runtime_env().cache_manager;
    let metadata = manager.get_file_metadata_cache();
    let mut usage = vec![CacheUsage {
        cache: "file_metadata",
        bytes: metadata.list_entries().values().map(|e| e.size_bytes).sum(),
        limit: metadata.cache_limit(),
    }];
    if let Some(statistics) = manager.get_file_statistic_cache() {
        usage.push(CacheUsage {
            cache: "file_statistics",
            bytes: statistics.list_entries().values().map(|e| e.size_bytes).sum(),
            limit: statistics.cache_limit(),
        });
    }
    usage
}

/// The configuration of [`offline_session`], with `var` standing for the environment.
pub fn offline_config(memory_limit: usize, var: impl Fn(&str) -> Option<String>) -> Result<SessionConfig> {
    let config =
        crate::lake::lake_config().with_information_schema(false).with_batch_size(batch_rows(memory_limit));
    let mut config = with_env_overrides(config, &var)?;
    if var(&env_var_name(SPILL_RESERVATION)).is_none() {
        // Each sort partition keeps this much aside for merging what it spilled. DataFusion's
        // default (10 MiB) is too little for sorts of tens of millions of rows: the merge of
        // many spill files then fails to grow while the other partitions' sorts hold the pool.
        // A quarter of the pool is shared out over the partitions (one sort each): a fixed
        // share per sort reserved the whole pool with 8 partitions (an 8-core machine) and
        // failed every materialization before it read a row.
        let partitions = config.target_partitions().max(1);
        let merge_headroom = (memory_limit / 4 / partitions).max(1 << 20);
        config = config.with_sort_spill_reservation_bytes(merge_headroom);
    }
    Ok(config)
}

/// DataFusion's option for the merge headroom; when the environment sets it, Quiver does not
/// choose the headroom itself.
const SPILL_RESERVATION: &str = "datafusion.execution.sort_spill_reservation_bytes";

/// The environment variable of a DataFusion option: its name upper-cased, dots as
/// underscores, as DataFusion itself names them.
fn env_var_name(option: &str) -> String {
    option.to_uppercase().replace('.', "_")
}

/// Applies DataFusion options set in the environment on top of Quiver's defaults: the option
/// `datafusion.execution.batch_size` is read from `DATAFUSION_EXECUTION_BATCH_SIZE` (the
/// option upper-cased, dots as underscores). An operator tunes a job this way without a
/// rebuild; a value DataFusion rejects is an error naming the variable.
pub fn with_env_overrides(
    mut config: SessionConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<SessionConfig> {
    for entry in config.options().entries() {
        let name = env_var_name(&entry.key);
        if let Some(value) = var(&name) {
            config
                .options_mut()
                .set(&entry.key, &value)
                .map_err(|e| Error::InvalidInput(format!("environment variable {name}={value:?}: {e}")))?;
        }
    }
    Ok(config)
}

/// Parses a byte size: `512MiB`, `4GiB`, `2G`, `1500000000`.
pub fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let unit = t[digits.len()..].trim().to_ascii_lowercase();
    let value: f64 = digits.parse().map_err(|_| format!("'{text}' is not a size (e.g. 512MiB, 4GiB)"))?;
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        other => return Err(format!("unknown size unit '{other}' in '{text}' (use KiB, MiB, GiB)")),
    };
    let bytes = value * factor;
    if !(1.0..=(usize::MAX as f64)).contains(&bytes) {
        return Err(format!("'{text}' is not a usable size"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusion_options_come_from_the_environment() {
        let env = |name: &str| match name {
            "DATAFUSION_EXECUTION_BATCH_SIZE" => Some("4096".to_string()),
            "DATAFUSION_EXECUTION_SORT_IN_PLACE_THRESHOLD_BYTES" => Some("1000".to_string()),
            _ => None,
        };
        let config = with_env_overrides(crate::lake::lake_config(), env).unwrap();
        assert_eq!(config.batch_size(), 4096);
        assert_eq!(config.options().execution.sort_in_place_threshold_bytes, 1000);
        // Quiver's own defaults are kept where the environment says nothing.
        assert!(!config.options().execution.listing_table_ignore_subdirectory);

        let bad = |name: &str| (name == "DATAFUSION_EXECUTION_BATCH_SIZE").then(|| "lots".to_string());
        let message = with_env_overrides(crate::lake::lake_config(), bad).unwrap_err().to_string();
        assert!(message.contains("DATAFUSION_EXECUTION_BATCH_SIZE=\"lots\""), "{message}");

        let vars = [("DATAFUSION_EXECUTION_BATCH_SIZE", "1024"), ("HOME", "/root")];
        let overrides = SessionOverrides::from_vars(vars.map(|(n, v)| (n.to_string(), v.to_string())));
        assert_eq!(overrides.get("DATAFUSION_EXECUTION_BATCH_SIZE").as_deref(), Some("1024"));
        assert_eq!(overrides.get("HOME"), None, "only DataFusion's variables are kept");
        let ctx = offline_session(64 << 20, &overrides).unwrap();
        assert_eq!(ctx.copied_config().batch_size(), 1024);
    }

    #[test]
    fn the_merge_headroom_of_all_sorts_together_is_a_quarter_of_the_pool() {
        let pool = 2usize << 30;
        for partitions in [1usize, 2, 8, 16, 64] {
            let text = partitions.to_string();
            let env = |name: &str| (name == "DATAFUSION_EXECUTION_TARGET_PARTITIONS").then(|| text.clone());
            let config = offline_config(pool, env).unwrap();
            assert_eq!(config.target_partitions(), partitions);
            let each = config.options().execution.sort_spill_reservation_bytes;
            assert!(each * partitions <= pool / 4, "{partitions} partitions: {each} each");
            assert!(each + 1 >= pool / 4 / partitions, "{partitions} partitions: {each} each");
        }
        // Two partitions (a 2-core machine) keep an eighth of the pool each.
        let two =
            offline_config(pool, |n| (n == "DATAFUSION_EXECUTION_TARGET_PARTITIONS").then(|| "2".into()))
                .unwrap();
        assert_eq!(two.options().execution.sort_spill_reservation_bytes, pool / 8);
        // An operator's own setting wins.
        let own = offline_config(pool, |n| {
            (n == "DATAFUSION_EXECUTION_SORT_SPILL_RESERVATION_BYTES").then(|| "12345678".into())
        })
        .unwrap();
        assert_eq!(own.options().execution.sort_spill_reservation_bytes, 12_345_678);
        assert_eq!(offline_config(pool, |_| None).unwrap().batch_size(), BATCH_ROWS);
    }

    #[test]
    fn small_memory_limits_get_smaller_batches() {
        assert_eq!(batch_rows(2 << 30), BATCH_ROWS);
        assert_eq!(batch_rows(512 << 20), BATCH_ROWS);
        assert_eq!(batch_rows(256 << 20), 32_768);
        assert_eq!(batch_rows((256 << 20) - 1), 16_384);
        assert_eq!(batch_rows(64 << 20), 8192);
        assert_eq!(batch_rows(1 << 20), MIN_BATCH_ROWS);
        assert_eq!(batch_rows(1), MIN_BATCH_ROWS);
        assert_eq!(offline_config(64 << 20, |_| None).unwrap().batch_size(), 8192);
        // An operator's own batch size wins.
        let own = |n: &str| (n == "DATAFUSION_EXECUTION_BATCH_SIZE").then(|| "100000".to_string());
        assert_eq!(offline_config(64 << 20, own).unwrap().batch_size(), 100_000);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
