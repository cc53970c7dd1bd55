//! The catalogue (`sku,weight_g,capabilities`, and optionally `category`) and stock levels
//! (`warehouse,sku,on_hand`): CSV files in the contract's format, or a demo world generated
//! from a seed.
//!
//! Both loaders check every row and report the file and line of the first problem; stock
//! rows are absolute on-hand levels, so loading the same file twice changes nothing.

use crate::config::Network;
use crate::ids::{Interner, SkuId, WarehouseId};
use crate::model::Capabilities;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The seed of the demo world when none is given.
pub const DEMO_SEED: u64 = 20_201_111;
/// SKUs in the demo catalogue.
pub const DEMO_SKUS: usize = 50_000;

/// A problem with a catalogue or stock file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// One SKU: what routing needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sku {
    pub weight_g: u32,
    pub capabilities: Capabilities,
    /// Extension (issue 11): the product category routing rules match on, as its index in
    /// [`Catalog::category_ids`] plus one; 0 = none (the column is optional, and may be
    /// empty).
    pub category: u16,
}

/// All SKUs, interned. Immutable once loaded.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub sku_ids: Interner,
    pub skus: Vec<Sku>,
    /// The categories named in the `category` column, in first-appearance order.
    pub category_ids: Interner,
}

impl Catalog {
    /// The SKU named `name`.
    #[inline]
    pub fn lookup(&self, name: &str) -> Option<SkuId> {
        self.sku_ids.get(name).map(SkuId)
    }

    #[inline]
    pub fn sku(&self, sku: SkuId) -> &Sku {
        &self.skus[sku.index()]
    }

    pub fn sku_name(&self, sku: SkuId) -> &str {
        self.sku_ids.name(sku.0)
    }

    /// The name of a SKU's `category` (empty for none).
    pub fn category_name(&self, category: u16) -> &str {
        match category {
            0 => "",
            index => self.category_ids.name(u32::from(index) - 1),
        }
    }

    /// The `category` of the category named `name`, if a SKU has it.
    pub fn category(&self, name: &str) -> Option<u16> {
        self.category_ids.get(name).map(|index| index as u16 + 1)
    }

    /// Starts loading what routing and rendering read of `sku` (its entry and its name).
    #[inline]
    pub fn prefetch(&self, sku: SkuId) {
        if let Some(entry) = self.skus.get(sku.index()) {
            crate::prefetch::prefetch(entry);
        }
        self.sku_ids.prefetch(sku.0);
    }

    pub fn len(&self) -> usize {
        self.skus.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skus.is_empty()
    }

    /// Reads a catalogue CSV file.
    pub fn load(path: &Path) -> Result<Catalog, DataError> {
        let file = std::fs::File::open(path).map_err(|source| DataError::Read {
            path: path.to_owned(),
            source,
        })?;
        Catalog::read(file, path)
    }

    /// Reads catalogue CSV from `reader`; `path` only names it in errors.
    pub fn read(reader: impl Read, path: &Path) -> Result<Catalog, DataError> {
        let mut csv = csv_reader(reader);
        let row_error = |line: u64, message: String| DataError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let with_category = check_header_either(
            &mut csv,
            &["sku", "weight_g", "capabilities"],
            &["sku", "weight_g", "capabilities", "category"],
            path,
        )?;
        let mut catalog = Catalog::default();
        let mut record = csv::StringRecord::new();
        loop {
            let line = csv.position().line();
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => return Err(row_error(line, error.to_string())),
            }
            let sku = record.get(0).unwrap_or("").trim();
            if sku.is_empty() {
                return Err(row_error(line, "sku is empty".into()));
            }
            let weight = record.get(1).unwrap_or("").trim();
            let weight_g = weight.parse::<u32>().map_err(|_| {
                row_error(
                    line,
                    format!("weight_g must be a whole number of grams, got '{weight}'"),
                )
            })?;
            let mut capabilities = Capabilities::NONE;
            for name in record.get(2).unwrap_or("").split(';').map(str::trim) {
                if name.is_empty() {
                    continue;
                }
                let capability = Capabilities::parse_one(name).ok_or_else(|| {
                    let known = Capabilities::NAMES.join(", ");
                    row_error(line, format!("unknown capability '{name}'; known: {known}"))
                })?;
                capabilities = capabilities.union(capability);
            }
            let category = if with_category {
                catalog
                    .intern_category(record.get(3).unwrap_or("").trim())
                    .map_err(|message| row_error(line, message))?
            } else {
                0
            };
            if catalog.sku_ids.insert(sku).is_err() {
                return Err(row_error(line, format!("sku '{sku}' is listed twice")));
            }
            catalog.skus.push(Sku {
                weight_g,
                capabilities,
                category,
            });
        }
        Ok(catalog)
    }

    /// `name`'s category (interned on first sight), or why it cannot be one.
    fn intern_category(&mut self, name: &str) -> Result<u16, String> {
        if name.is_empty() {
            return Ok(0);
        }
        let index = match self.category_ids.insert(name) {
            Ok(index) | Err(index) => index,
        };
        u16::try_from(index + 1)
            .ok()
            .filter(|category| *category < u16::MAX)
            .ok_or_else(|| format!("more than {} distinct categories", u16::MAX - 1))
    }

    /// Writes the catalogue as contract CSV (with the `category` column only when some SKU
    /// has a category, so a catalogue without them is written as the contract shows it).
    pub fn write_csv(&self, out: impl Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(out);
        let with_category = !self.category_ids.is_empty();
        let header = if with_category { ",category" } else { "" };
        writeln!(out, "sku,weight_g,capabilities{header}")?;
        for (index, sku) in self.skus.iter().enumerate() {
            write!(
                out,
                "{},{},{}",
                self.sku_ids.name(index as u32),
                sku.weight_g,
                sku.capabilities
            )?;
            if with_category {
                write!(out, ",{}", self.category_name(sku.category))?;
            }
            writeln!(out)?;
        }
        out.flush()
    }

    /// A deterministic demo catalogue of `count` SKUs named `SKU-000000`...: mostly parcels
    /// of 50 g to 5 kg, about 6% cold chain, 2% hazmat and 4% bulky (8 to 80 kg).
    pub fn demo(count: usize, seed: u64) -> Catalog {
        let mut random = ChaCha8Rng::seed_from_u64(seed);
        let mut catalog = Catalog {
            sku_ids: Interner::with_capacity(count),
            skus: Vec::with_capacity(count),
            category_ids: Interner::default(),
        };
        let mut name = String::with_capacity(16);
        for index in 0..count {
            let roll: f64 = random.random();
            let (capabilities, weight_g) = if roll < 0.04 {
                (Capabilities(0b100), random.random_range(8_000..80_000))
            } else if roll < 0.10 {
                (Capabilities(0b001), random.random_range(200..6_000))
            } else if roll < 0.12 {
                (Capabilities(0b010), random.random_range(100..4_000))
            } else {
                // Log-uniform between 50 g and 5 kg: many light items, a few heavier.
                let exponent: f64 = random.random_range(0.0..2.0);
                (
                    Capabilities::NONE,
                    (50.0 * 10f64.powf(exponent)).round() as u32,
                )
            };
            // One buffer for every name (the interner keeps its own copy).
            name.clear();
            write!(name, "SKU-{index:06}").expect("writing to a String cannot fail");
            // Names are generated unique.
            let _ = catalog.sku_ids.insert(&name);
            catalog.skus.push(Sku {
                weight_g,
                capabilities,
                category: 0,
            });
        }
        catalog
    }
}

/// One absolute stock level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    pub warehouse: WarehouseId,
    pub sku: SkuId,
    pub on_hand: u32,
}

impl StockLevel {
    /// A stock row as written (names), resolved against `network` and `catalog`: the CSV
    /// file, the NDJSON upload and the journal's stock records all read rows so. The error
    /// names the unknown warehouse or SKU.
    pub fn from_names(
        network: &Network,
        catalog: &Catalog,
        warehouse: &str,
        sku: &str,
        on_hand: u32,
    ) -> Result<StockLevel, String> {
        let warehouse = network
            .warehouse_ids
            .get(warehouse)
            .ok_or_else(|| format!("warehouse '{warehouse}' is not in the network"))?;
        let sku = catalog
            .lookup(sku)
            .ok_or_else(|| format!("sku '{sku}' is not in the catalogue"))?;
        Ok(StockLevel {
            warehouse: WarehouseId(warehouse as u16),
            sku,
            on_hand,
        })
    }
}

/// Reads a stock CSV file (`warehouse,sku,on_hand`).
pub fn load_stock(
    path: &Path,
    network: &Network,
    catalog: &Catalog,
) -> Result<Vec<StockLevel>, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Read {
        path: path.to_owned(),
        source,
    })?;
    read_stock(file, path, network, catalog)
}

/// Reads stock CSV from `reader`; `path` only names it in errors.
pub fn read_stock(
    reader: impl Read,
    path: &Path,
    network: &Network,
    catalog: &Catalog,
) -> Result<Vec<StockLevel>, DataError> {
    let mut csv = csv_reader(reader);
    check_header(&mut csv, &["warehouse", "sku", "on_hand"], path)?;
    let mut levels = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        let row_error = |message: String| DataError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(row_error(error.to_string())),
        }
        let on_hand_text = record.get(2).unwrap_or("").trim();
        let on_hand = on_hand_text.parse::<u32>().map_err(|_| {
            row_error(format!(
                "on_hand must be a whole number >= 0, got '{on_hand_text}'"
            ))
        })?;
        let (warehouse, sku) = (record.get(0).unwrap_or(""), record.get(1).unwrap_or(""));
        let level = StockLevel::from_names(network, catalog, warehouse.trim(), sku.trim(), on_hand)
            .map_err(row_error)?;
        levels.push(level);
    }
    Ok(levels)
}

/// Writes stock levels as contract CSV.
pub fn write_stock_csv(
    levels: &[StockLevel],
    network: &Network,
    catalog: &Catalog,
    out: impl Write,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "warehouse,sku,on_hand")?;
    for level in levels {
        writeln!(
            out,
            "{},{},{}",
            network.warehouse_name(level.warehouse),
            catalog.sku_name(level.sku),
            level.on_hand
        )?;
    }
    out.flush()
}

/// Deterministic demo stock, shaped like the demand [`crate::demo`] generates (a SKU at
/// catalogue position `x` of 1 is ordered in proportion to `x^(-2/3)`): best sellers are
/// carried by nearly every warehouse that can handle them and in depth, the long tail by
/// about a third of them, most a few dozen units.
pub fn demo_stock(network: &Network, catalog: &Catalog, seed: u64) -> Vec<StockLevel> {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0x570c);
    let mut levels = Vec::new();
    let skus = catalog.len().max(1) as f64;
    // A SKU's popularity is the same at every warehouse: one `powf` per SKU, not per cell.
    let popularities: Vec<f64> = (0..catalog.skus.len())
        .map(|sku_index| {
            let position = (sku_index as f64 + 0.5) / skus;
            (position.powf(-2.0 / 3.0) / 3.0).clamp(1.0, 400.0)
        })
        .collect();
    for (warehouse_index, warehouse) in network.warehouses.iter().enumerate() {
        let tail_share = if warehouse.rank <= 1 { 0.5 } else { 0.3 };
        for ((sku_index, sku), &popularity) in catalog.skus.iter().enumerate().zip(&popularities) {
            let share = (tail_share * popularity).min(0.95);
            if !warehouse.capabilities.covers(sku.capabilities) || random.random::<f64>() >= share {
                continue;
            }
            let base: u32 = match random.random_range(0..10) {
                0 => random.random_range(0..5),
                1..=6 => random.random_range(5..80),
                _ => random.random_range(80..600),
            };
            levels.push(StockLevel {
                warehouse: WarehouseId(warehouse_index as u16),
                sku: SkuId(sku_index as u32),
                on_hand: (f64::from(base) * popularity).round() as u32,
            });
        }
    }
    levels
}

/// A CSV reader of rows with their header. Fields are trimmed by the code that reads them,
/// not by the reader: `csv`'s own trimming copies every record into a new one (three
/// allocations a row, 2.8M for the demo's 468k rows at start).
fn csv_reader(reader: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(reader)
}

/// Checks the header is `short` or `long`; `true` when it is `long`.
fn check_header_either(
    csv: &mut csv::Reader<impl Read>,
    short: &[&str],
    long: &[&str],
    path: &Path,
) -> Result<bool, DataError> {
    let (found, header) = read_header(csv, path)?;
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if found && (names == short || names == long) {
        return Ok(names == long);
    }
    Err(DataError::Row {
        path: path.to_owned(),
        line: 1,
        message: format!(
            "the header must be '{}' or '{}', found '{}'",
            short.join(","),
            long.join(","),
            names.join(",")
        ),
    })
}

/// The first row of a CSV file, and whether there was one.
fn read_header(
    csv: &mut csv::Reader<impl Read>,
    path: &Path,
) -> Result<(bool, csv::StringRecord), DataError> {
    let mut header = csv::StringRecord::new();
    let found = csv
        .read_record(&mut header)
        .map_err(|error| DataError::Row {
            path: path.to_owned(),
            line: 1,
            message: error.to_string(),
        })?;
    Ok((found, header))
}

fn check_header(
    csv: &mut csv::Reader<impl Read>,
    expected: &[&str],
    path: &Path,
) -> Result<(), DataError> {
    let (found, header) = read_header(csv, path)?;
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if !found || names != expected {
        return Err(DataError::Row {
            path: path.to_owned(),
            line: 1,
            message: format!(
                "the header must be '{}', found '{}'",
                expected.join(","),
                names.join(",")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_format_and_names_bad_rows() {
        let path = Path::new("catalog.csv");
        let text = "sku,weight_g,capabilities\nA,100,\nB,2500,cold_chain;hazmat\n";
        let catalog = Catalog::read(text.as_bytes(), path).unwrap();
        assert_eq!(catalog.len(), 2);
        let b = catalog.lookup("B").unwrap();
        assert_eq!(catalog.sku(b).weight_g, 2500);
        assert_eq!(catalog.sku(b).capabilities.to_string(), "cold_chain;hazmat");

        let error = Catalog::read(
            "sku,weight_g,capabilities\nA,100,\nB,heavy,\n".as_bytes(),
            path,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "catalog.csv:3: weight_g must be a whole number of grams, got 'heavy'"
        );
        let error = Catalog::read("sku,weight\nA,1\n".as_bytes(), path).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("catalog.csv:1: the header must be"),
            "{error}"
        );
        let error =
            Catalog::read("sku,weight_g,capabilities\nA,1,fragile\n".as_bytes(), path).unwrap_err();
        assert!(
            error.to_string().contains("unknown capability 'fragile'"),
            "{error}"
        );
    }

    #[test]
    fn the_category_column_is_optional_and_round_trips() {
        let path = Path::new("catalog.csv");
        let text =
            "sku,weight_g,capabilities,category\nA,100,,toys\nB,200,cold_chain,\nC,300,,toys\n";
        let catalog = Catalog::read(text.as_bytes(), path).unwrap();
        let category = |name: &str| catalog.sku(catalog.lookup(name).unwrap()).category;
        assert_eq!(catalog.category_name(category("A")), "toys");
        assert_eq!(category("B"), 0);
        assert_eq!(category("C"), category("A"));
        assert_eq!(catalog.category("toys"), Some(category("A")));
        let mut csv = Vec::new();
        catalog.write_csv(&mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), text);
        // The contract's three columns: no categories.
        let plain = Catalog::read("sku,weight_g,capabilities\nA,100,\n".as_bytes(), path).unwrap();
        assert_eq!(plain.skus[0].category, 0);
        assert!(plain.category_ids.is_empty());
        // A row must have the header's columns.
        let short = "sku,weight_g,capabilities,category\nA,100,\n";
        assert!(Catalog::read(short.as_bytes(), path).is_err());
    }

    #[test]
    fn demo_catalog_is_deterministic_and_round_trips_through_csv() {
        let catalog = Catalog::demo(500, 7);
        assert_eq!(Catalog::demo(500, 7).skus, catalog.skus);
        assert_ne!(Catalog::demo(500, 8).skus, catalog.skus);
        let mut csv = Vec::new();
        catalog.write_csv(&mut csv).unwrap();
        let again = Catalog::read(csv.as_slice(), Path::new("x")).unwrap();
        assert_eq!(again.skus, catalog.skus);
        assert_eq!(again.sku_name(SkuId(42)), "SKU-000042");
    }
}
