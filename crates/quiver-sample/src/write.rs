//! Writing generated tables to files: part files, streaming batches, atomic renames.
//!
//! A table of `n` rows becomes `ceil(n / rows_per_file)` part files named
//! `part-00000.<ext>`, `part-00001.<ext>`, … in the table's folder. Each file is written
//! under a hidden temporary name (`.part-00000.<ext>.tmp`, which `*.<ext>` globs do not
//! match) and renamed when complete, so a reader never sees half a file. Rows are produced
//! `batch_rows` at a time: only one batch (plus the Parquet writer's open row group) is in
//! memory, whatever the table size.
//!
//! After a table is written, part files with a higher number left by an earlier, larger
//! generation in the same folder, and temporary files of an interrupted run, are removed:
//! otherwise a glob over the folder would read them as part of this lake. Nothing else in
//! the folder is touched.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::Table;
use crate::error::{Error, Result, io_error};
use crate::tables::{ParquetTable, TextTable};

/// How rows are grouped into batches and files. Only the layout of the output depends on
/// it, never the rows themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Rows generated (and held in memory) at a time.
    pub(crate) batch_rows: u64,
    /// Rows per part file (the last file holds the rest).
    pub(crate) rows_per_file: u64,
    /// Rows per Parquet row group: several per file, so scans can split a file and prune
    /// row groups by their time statistics.
    pub(crate) row_group_rows: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Self { batch_rows: 65_536, rows_per_file: 1_000_000, row_group_rows: 131_072 }
    }
}

impl Layout {
    fn checked(self) -> Result<Self> {
        if self.batch_rows == 0 || self.rows_per_file == 0 || self.row_group_rows == 0 {
            return Err(Error::Internal(format!("empty layout unit in {self:?}")));
        }
        Ok(self)
    }
}

/// The file name of part `index`.
fn part_name(index: u64, extension: &str) -> String {
    format!("part-{index:05}.{extension}")
}

/// The row ranges of the part files of a table of `rows` rows.
fn file_ranges(rows: u64, rows_per_file: u64) -> impl Iterator<Item = (u64, std::ops::Range<u64>)> {
    (0..rows.div_ceil(rows_per_file)).map(move |index| {
        let start = index * rows_per_file;
        (index, start..(start + rows_per_file).min(rows))
    })
}

/// Batch-sized sub-ranges of `range`.
fn batch_ranges(range: std::ops::Range<u64>, batch_rows: u64) -> impl Iterator<Item = std::ops::Range<u64>> {
    (range.start..range.end)
        .step_by(usize::try_from(batch_rows).unwrap_or(usize::MAX))
        .map(move |start| start..(start + batch_rows).min(range.end))
}

/// Writer settings shared by every Parquet file. `created_by` is pinned so that the bytes
/// do not change with the `parquet` crate's version string.
fn writer_properties(layout: &Layout) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(layout.row_group_rows))
        .set_created_by(format!("quiver-sample {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A table folder, created if missing; returns its path.
fn table_dir(lake: &Path, table: Table) -> Result<PathBuf> {
    let dir = lake.join(table.dir_name());
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    Ok(dir)
}

/// Moves a finished temporary file to its final name and records it in `files`.
fn publish(
    tmp: &Path,
    dir: &Path,
    name: &str,
    table: Table,
    rows: u64,
    files: &mut Vec<(String, u64)>,
) -> Result<()> {
    let path = dir.join(name);
    fs::rename(tmp, &path).map_err(io_error(&path))?;
    files.push((format!("{}/{name}", table.dir_name()), rows));
    Ok(())
}

/// Writes one batch as a Parquet file at `path`, creating its folder: lake files of the
/// workspace's tests, shaped by hand.
pub fn write_batch(path: &Path, batch: &arrow::array::RecordBatch) -> Result<()> {
    let parquet_error = |source| Error::Parquet { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(())
}

/// Writes `rows` rows of a Parquet table.
pub(crate) fn write_parquet<T: ParquetTable>(
    lake: &Path,
    table: Table,
    generator: &mut T,
    rows: u64,
    layout: &Layout,
    files: &mut Vec<(String, u64)>,
) -> Result<()> {
    let checked = layout.checked()?;
    write_files(lake, table, rows, layout, files, |tmp, range| {
        let parquet_error = |source| Error::Parquet { path: tmp.to_path_buf(), source };
        let file = File::create(tmp).map_err(io_error(tmp))?;
        let mut writer =
            ArrowWriter::try_new(BufWriter::new(file), generator.schema(), Some(writer_properties(&checked)))
                .map_err(parquet_error)?;
        for batch in batch_ranges(range, checked.batch_rows) {
            let batch = generator.batch(batch)?;
            writer.write(&batch).map_err(parquet_error)?;
        }
        writer
            .into_inner()
            .map_err(parquet_error)?
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_error(tmp))?;
        Ok(())
    })
}

/// Writes `rows` rows of a text (CSV or JSON lines) table.
pub(crate) fn write_text<T: TextTable>(
    lake: &Path,
    table: Table,
    generator: &mut T,
    rows: u64,
    layout: &Layout,
    files: &mut Vec<(String, u64)>,
) -> Result<()> {
    write_files(lake, table, rows, layout, files, |tmp, range| {
        let file = File::create(tmp).map_err(io_error(tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        if let Some(header) = generator.header() {
            writeln!(out, "{header}").map_err(io_error(tmp))?;
        }
        for row in range {
            generator.write_row(row, &mut out).map_err(io_error(tmp))?;
        }
        out.into_inner().map_err(|e| e.into_error()).map_err(io_error(tmp))?;
        Ok(())
    })
}

/// Writes a table's part files, each through `write_file(temporary path, its rows)`, then
/// publishes it under its final name; removes parts a previous, larger run left behind.
fn write_files(
    lake: &Path,
    table: Table,
    rows: u64,
    layout: &Layout,
    files: &mut Vec<(String, u64)>,
    mut write_file: impl FnMut(&Path, Range<u64>) -> Result<()>,
) -> Result<()> {
    let layout = layout.checked()?;
    let dir = table_dir(lake, table)?;
    let extension = table.format().extension();
    let mut count = 0;
    for (index, range) in file_ranges(rows, layout.rows_per_file) {
        let name = part_name(index, extension);
        let tmp = dir.join(format!(".{name}.tmp"));
        write_file(&tmp, range.clone())?;
        publish(&tmp, &dir, &name, table, range.end - range.start, files)?;
        count = index + 1;
    }
    remove_stale(&dir, extension, count)
}

/// Removes `part-NNNNN.<ext>` files numbered `keep` or higher and `.part-*.tmp` files.
fn remove_stale(dir: &Path, extension: &str, keep: u64) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(io_error(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = if name.starts_with(".part-") && name.ends_with(".tmp") {
            true
        } else {
            name.strip_prefix("part-")
                .and_then(|rest| rest.strip_suffix(extension))
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<u64>().ok())
                .is_some_and(|index| index >= keep)
        };
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_rows_exactly() {
        let files: Vec<_> = file_ranges(25, 10).collect();
        assert_eq!(files, vec![(0, 0..10), (1, 10..20), (2, 20..25)]);
        let batches: Vec<_> = batch_ranges(10..25, 4).collect();
        assert_eq!(batches, vec![10..14, 14..18, 18..22, 22..25]);
        assert_eq!(file_ranges(0, 10).count(), 0);
    }
}
