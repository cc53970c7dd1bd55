//! Everything the router starts from: the network config, the catalogue and the stock
//! levels, from files or from the embedded defaults (`config/router.toml` and the demo
//! catalogue and stock generated from a fixed seed).

use crate::catalog::{self, Catalog, DataError, StockLevel};
use crate::config::{ConfigError, ConfigProblem, Network};
use crate::risk::{CustomerLimit, CustomersError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default config path, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/router.toml";
/// `config/router.toml` as it was when the binary was built: used when the file is not
/// there, so the binary starts anywhere.
pub const EMBEDDED_CONFIG: &str = include_str!("../config/router.toml");

/// Why the world could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("customers file {}: {source}", path.display())]
    Customers {
        path: PathBuf,
        source: CustomersError,
    },
}

/// A network, its catalogue and the on-hand levels to start from.
#[derive(Debug, Clone)]
pub struct World {
    pub network: Arc<Network>,
    pub catalog: Arc<Catalog>,
    pub stock: Vec<StockLevel>,
    /// Credit limits from the customers file (none without one).
    pub customers: Vec<CustomerLimit>,
}

/// Where to load each part from; `None` means the default.
#[derive(Debug, Clone, Default)]
pub struct WorldSources {
    pub config: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub stock: Option<PathBuf>,
    /// The customers file (credit limits); none by default.
    pub customers: Option<PathBuf>,
    /// Seed of the demo catalogue and stock.
    pub seed: u64,
}

impl World {
    /// Loads the parts named in `sources`, defaulting the others.
    pub fn load(sources: &WorldSources) -> Result<World, WorldError> {
        let network = Arc::new(match &sources.config {
            Some(path) => Network::load(path)?,
            None => default_network()?,
        });
        let catalog = Arc::new(match &sources.catalog {
            Some(path) => Catalog::load(path)?,
            None => Catalog::demo(catalog::DEMO_SKUS, sources.seed),
        });
        check_rule_categories(&network, &catalog, sources.config.as_deref())?;
        let stock = match &sources.stock {
            Some(path) => catalog::load_stock(path, &network, &catalog)?,
            None => catalog::demo_stock(&network, &catalog, sources.seed),
        };
        let customers = match &sources.customers {
            Some(path) => load_customers(path)?,
            None => Vec::new(),
        };
        Ok(World {
            customers,
            network,
            catalog,
            stock,
        })
    }

    /// The default world: the default network, demo catalogue and demo stock.
    pub fn demo() -> Result<World, WorldError> {
        World::load(&WorldSources {
            seed: catalog::DEMO_SEED,
            ..WorldSources::default()
        })
    }
}

/// The rows of the customers file at `path`: all of them, or the first bad one's line.
pub fn load_customers(path: &Path) -> Result<Vec<CustomerLimit>, WorldError> {
    crate::risk::customers::read_file(path).map_err(|source| WorldError::Customers {
        path: path.to_owned(),
        source,
    })
}

/// Refuses a config whose rules name a category no SKU of `catalog` has: `check-config`
/// cannot see it (it reads the config alone), so it is checked where the two meet. Each
/// unknown category is reported at its place in the config file (`config`, or the default
/// one).
pub fn check_rule_categories(
    network: &Network,
    catalog: &Catalog,
    config: Option<&Path>,
) -> Result<(), ConfigError> {
    let mut problems: Vec<ConfigProblem> = network
        .policy
        .rules
        .category_references
        .iter()
        .filter(|reference| catalog.category(&reference.name).is_none())
        .map(|reference| {
            let known: Vec<&str> = catalog.category_ids.names().take(40).collect();
            ConfigProblem {
                line: reference.line,
                column: reference.column,
                key: reference.key.clone(),
                message: format!(
                    "category '{}' is not in the catalogue; its categories: {}",
                    reference.name,
                    if known.is_empty() {
                        "none (no category column)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            }
        })
        .collect();
    problems.extend(
        network
            .policy
            .risk
            .sku_references
            .iter()
            .filter(|reference| catalog.sku_ids.get(&reference.name).is_none())
            .map(|reference| ConfigProblem {
                line: reference.line,
                column: reference.column,
                key: reference.key.clone(),
                message: format!("SKU '{}' is not in the catalogue", reference.name),
            }),
    );
    if problems.is_empty() {
        return Ok(());
    }
    let path = match config {
        Some(path) => path.to_owned(),
        None => default_config_file().map_or_else(
            || PathBuf::from(format!("(embedded) {DEFAULT_CONFIG_PATH}")),
            Path::to_owned,
        ),
    };
    Err(ConfigError::Invalid { path, problems })
}

/// `config/router.toml` if it is there (the file the default network is read from).
pub fn default_config_file() -> Option<&'static Path> {
    let path = Path::new(DEFAULT_CONFIG_PATH);
    path.exists().then_some(path)
}

/// `config/router.toml` if it is there, else the embedded copy.
pub fn default_network() -> Result<Network, ConfigError> {
    if let Some(path) = default_config_file() {
        Network::load(path)
    } else {
        Network::from_toml(EMBEDDED_CONFIG).map_err(|problems| ConfigError::Invalid {
            path: PathBuf::from(format!("(embedded) {DEFAULT_CONFIG_PATH}")),
            problems,
        })
    }
}
