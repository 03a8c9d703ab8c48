//! `causeway.yaml`: the raw, versioned configuration and its conversion into validated types.
//!
//! Unknown keys are rejected; every error names the file, line, column and key path
//! (`journeys[0].slo.latency.threshold_ms`). Every key has a default, so no file at all is a
//! valid configuration. Secrets are never written here: only the names of environment
//! variables that hold them (`*_env` keys).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The configuration file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_version")]
    pub version: u32,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub window: WindowSection,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub ownership: OwnershipSection,
    #[serde(default)]
    pub journeys: Vec<JourneySection>,
    #[serde(default)]
    pub routing: RoutingSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub notifiers: crate::notifiers::NotifiersSection,
    #[serde(default)]
    pub ui: UiSection,
    /// The optional narrator (an OpenAI-compatible chat-completions endpoint).
    #[serde(default)]
    pub assistant: Option<crate::assistant::AssistantSection>,
    #[serde(default)]
    pub auth: Option<AuthSection>,
    /// Where the file was read from; relative paths inside it resolve against its directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: default_version(),
            listen: Listen::default(),
            data_dir: default_data_dir(),
            window: WindowSection::default(),
            ingest: IngestSection::default(),
            ownership: OwnershipSection::default(),
            journeys: Vec::new(),
            routing: RoutingSection::default(),
            alerts: AlertsSection::default(),
            notifiers: crate::notifiers::NotifiersSection::default(),
            ui: UiSection::default(),
            assistant: None,
            auth: None,
            base_dir: PathBuf::from("."),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_otlp_grpc")]
    pub otlp_grpc: SocketAddr,
    #[serde(default = "default_otlp_http")]
    pub otlp_http: SocketAddr,
    #[serde(default = "default_http")]
    pub http: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Listen { otlp_grpc: default_otlp_grpc(), otlp_http: default_otlp_http(), http: default_http() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSection {
    /// How long traces are kept (default 30m).
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
    /// Upper bound of the window's memory (default 1GiB).
    #[serde(default = "default_max_memory")]
    pub max_memory: ByteSize,
}

impl Default for WindowSection {
    fn default() -> Self {
        WindowSection { retention: default_retention(), max_memory: default_max_memory() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Largest accepted request body after decompression (default 16MiB).
    #[serde(default = "default_max_request")]
    pub max_request_bytes: ByteSize,
    /// Decoded bytes that may wait for the pipeline before clients get 429 (default 64MiB).
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: ByteSize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection { max_request_bytes: default_max_request(), queue_bytes: default_queue_bytes() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipSection {
    /// owners.yaml (SPEC §2.4 simple form).
    #[serde(default)]
    pub owners: Option<PathBuf>,
    /// Directory (searched recursively) or file of Backstage `catalog-info.yaml` documents.
    #[serde(default)]
    pub catalog: Option<PathBuf>,
    /// Resource attribute keys naming a span's team, in order.
    #[serde(default = "default_team_keys")]
    pub team_keys: Vec<String>,
    /// Catches everything no source owns (overrides owners.yaml's `default_team`).
    #[serde(default)]
    pub default_team: Option<String>,
}

impl Default for OwnershipSection {
    fn default() -> Self {
        OwnershipSection { owners: None, catalog: None, team_keys: default_team_keys(), default_team: None }
    }
}

/// A journey (SPEC §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneySection {
    pub name: String,
    pub entry: EntrySection,
    /// Default: the owner of the entry service.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub slo: SloSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySection {
    pub service: String,
    /// Span name or `http.route` of the entry SERVER span.
    pub operation: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSection {
    /// Percent of requests without error at the entry span, e.g. 99.9.
    #[serde(default)]
    pub availability: Option<f64>,
    #[serde(default)]
    pub latency: Option<LatencySection>,
    #[serde(default = "default_period")]
    pub period: HumanDuration,
    #[serde(default)]
    pub windows: WindowsSection,
    /// Windows with fewer requests never fire.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

impl Default for SloSection {
    fn default() -> Self {
        SloSection {
            availability: Some(99.9),
            latency: None,
            period: default_period(),
            windows: WindowsSection::default(),
            min_requests: default_min_requests(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySection {
    pub threshold_ms: f64,
    /// Percent of requests faster than the threshold, e.g. 99.0.
    pub target: f64,
}

/// `google` (the SRE Workbook tiers scaled to the period) or an explicit list.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(untagged)]
pub enum WindowsSection {
    #[default]
    #[serde(skip)]
    Google,
    Named(String),
    Tiers(Vec<TierSection>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSection {
    pub long: HumanDuration,
    pub short: HumanDuration,
    pub burn: f64,
    /// Page tiers trigger routing; ticket tiers create a non-paging notice (default: page).
    #[serde(default = "yes")]
    pub page: bool,
    #[serde(default)]
    pub name: Option<String>,
}

/// Routing settings (SPEC §4.4 thresholds and evidence windows).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    #[serde(default = "default_min_traces")]
    pub min_traces: usize,
    #[serde(default = "default_dominant_share")]
    pub dominant_share: f64,
    #[serde(default = "default_two_cause_share")]
    pub two_cause_share: f64,
    #[serde(default = "default_max_traces")]
    pub max_traces: usize,
    #[serde(default = "default_lookback")]
    pub lookback: HumanDuration,
    #[serde(default = "default_baseline")]
    pub baseline: HumanDuration,
    #[serde(default = "default_evidence_wait")]
    pub evidence_wait: HumanDuration,
    #[serde(default = "default_resolve_grace")]
    pub resolve_grace: HumanDuration,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            min_traces: default_min_traces(),
            dominant_share: default_dominant_share(),
            two_cause_share: default_two_cause_share(),
            max_traces: default_max_traces(),
            lookback: default_lookback(),
            baseline: default_baseline(),
            evidence_wait: default_evidence_wait(),
            resolve_grace: default_resolve_grace(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// Alerts whose `severity` label is one of these may page; others only notify.
    #[serde(default = "default_paging_severities")]
    pub paging_severities: Vec<String>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection { paging_severities: default_paging_severities() }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UiSection {
    /// The URL people open the UI at (incident links in pages). Default: `http://<listen.http>`.
    #[serde(default)]
    pub external_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Environment variable holding the bearer token for the API and write endpoints.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Environment variable holding a separate bearer token for ingest (OTLP, alerts).
    #[serde(default)]
    pub ingest_token_env: Option<String>,
}

/// A configuration error, located.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {key}{message}")]
    Invalid { path: PathBuf, line: usize, column: usize, key: String, message: String },
    #[error("{path}: {message}")]
    Semantic { path: PathBuf, message: String },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::parse(&text, path)?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        if config.base_dir.as_os_str().is_empty() {
            config.base_dir = PathBuf::from(".");
        }
        Ok(config)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = parse_yaml(text, path)?;
        if config.version != 1 {
            return Err(ConfigError::Semantic {
                path: path.to_path_buf(),
                message: format!(
                    "version: unsupported configuration version {} (this causeway reads version 1)",
                    config.version
                ),
            });
        }
        Ok(config)
    }

    /// The engine's view of this configuration: journeys and routing, validated.
    pub fn engine_config(&self, path: &Path) -> Result<causeway_engine::EngineConfig, ConfigError> {
        use causeway_engine::journey::{BurnTier, Journey, LatencySlo, Slo};
        let semantic = |message: String| ConfigError::Semantic { path: path.to_path_buf(), message };
        let mut journeys = Vec::new();
        for (index, journey) in self.journeys.iter().enumerate() {
            let at = format!("journeys[{index}] ({})", journey.name);
            if journey.name.trim().is_empty() {
                return Err(semantic(format!("journeys[{index}].name: must not be empty")));
            }
            if self.journeys[..index].iter().any(|other| other.name == journey.name) {
                return Err(semantic(format!("{at}: duplicate journey name {:?}", journey.name)));
            }
            let slo = &journey.slo;
            let percent = |value: f64, key: &str| {
                if value > 0.0 && value < 100.0 {
                    Ok(value / 100.0)
                } else {
                    Err(semantic(format!("{at}.slo.{key}: {value} is not a percentage between 0 and 100 (exclusive)")))
                }
            };
            let availability = slo.availability.map(|value| percent(value, "availability")).transpose()?;
            let latency = match &slo.latency {
                Some(latency) => {
                    if latency.threshold_ms <= 0.0 {
                        return Err(semantic(format!("{at}.slo.latency.threshold_ms: must be positive")));
                    }
                    Some(LatencySlo {
                        threshold: (latency.threshold_ms * 1e6) as i64,
                        target: percent(latency.target, "latency.target")?,
                    })
                }
                None => None,
            };
            let period = slo.period.as_nanos_i64();
            let tiers = match &slo.windows {
                WindowsSection::Google => BurnTier::google(period),
                WindowsSection::Named(name) if name == "google" => BurnTier::google(period),
                WindowsSection::Named(name) => {
                    return Err(semantic(format!(
                        "{at}.slo.windows: unknown preset {name:?} (use google or a list of tiers)"
                    )));
                }
                WindowsSection::Tiers(tiers) => tiers
                    .iter()
                    .enumerate()
                    .map(|(n, tier)| {
                        if tier.short.0 >= tier.long.0 {
                            return Err(semantic(format!(
                                "{at}.slo.windows[{n}]: short window must be shorter than long"
                            )));
                        }
                        if tier.burn <= 0.0 {
                            return Err(semantic(format!("{at}.slo.windows[{n}].burn: must be positive")));
                        }
                        Ok(BurnTier {
                            name: tier.name.clone().unwrap_or_else(|| format!("tier-{}", n + 1)),
                            long: tier.long.as_nanos_i64(),
                            short: tier.short.as_nanos_i64(),
                            burn: tier.burn,
                            page: tier.page,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            journeys.push(Journey {
                name: journey.name.clone(),
                entry_service: journey.entry.service.clone(),
                entry_operation: journey.entry.operation.clone(),
                owner: journey.owner.clone(),
                slo: Slo { availability, latency, period, tiers, min_requests: slo.min_requests },
            });
        }
        let routing = &self.routing;
        for (key, value) in [("dominant_share", routing.dominant_share), ("two_cause_share", routing.two_cause_share)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(semantic(format!("routing.{key}: {value} must be between 0 and 1")));
            }
        }
        Ok(causeway_engine::EngineConfig {
            window: causeway_engine::WindowConfig {
                retention: self.window.retention.as_nanos_i64(),
                max_memory: self.window.max_memory.as_usize(),
            },
            routing: causeway_engine::RoutingConfig {
                thresholds: causeway_engine::decide::Thresholds {
                    min_traces: routing.min_traces,
                    dominant_share: routing.dominant_share,
                    two_cause_share: routing.two_cause_share,
                },
                max_traces: routing.max_traces,
                min_lookback: routing.lookback.as_nanos_i64(),
                baseline: routing.baseline.as_nanos_i64(),
                evidence_wait: routing.evidence_wait.as_nanos_i64(),
                resolve_grace: routing.resolve_grace.as_nanos_i64(),
                ..causeway_engine::RoutingConfig::default()
            },
            journeys,
            slo_symptoms: true,
        })
    }

    /// Loads the ownership sources this configuration names.
    pub fn load_ownership(&self) -> crate::ownership::LoadedOwnership {
        let owners = self.ownership.owners.as_ref().map(|path| self.resolve(path));
        let catalog = self.ownership.catalog.as_ref().map(|path| self.resolve(path));
        crate::ownership::load(owners.as_deref(), catalog.as_deref(), self.ownership.default_team.as_deref())
    }

    /// Resolves a path written in the file against the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.base_dir.join(path) }
    }
}

/// Deserializes YAML with located, key-named errors. Shared by every YAML file Causeway reads.
pub fn parse_yaml<T: for<'de> Deserialize<'de>>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let (line, column) = inner.location().map_or((0, 0), |location| (location.line(), location.column()));
        let message = strip_location(&inner.to_string());
        let key = if key.is_empty() || key == "." { String::new() } else { format!("{key}: ") };
        ConfigError::Invalid { path: path.to_path_buf(), line, column, key, message }
    })
}

/// serde_norway appends " at line X column Y"; the location is reported separately.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// A duration written like `30m`, `28d`, `1h 30m`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_nanos_i64(&self) -> i64 {
        i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX)
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(HumanDuration).map_err(|error| {
            serde::de::Error::custom(format!("invalid duration {text:?} ({error}); write e.g. 30s, 5m, 28d"))
        })
    }
}

/// A size in bytes, written as a number or like `512MiB`, `1GiB`, `64MB`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Option<ByteSize> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" | "k" => 1 << 10,
            "mb" => 1_000_000,
            "mib" | "m" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" | "g" => 1 << 30,
            _ => return None,
        };
        number.checked_mul(multiplier).map(ByteSize)
    }

    pub fn as_usize(&self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(number) => Ok(ByteSize(number)),
            Raw::Text(text) => ByteSize::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!("invalid size {text:?}; write bytes or e.g. 512MiB, 1GiB"))
            }),
        }
    }
}

fn default_version() -> u32 {
    1
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./causeway-data")
}
fn default_otlp_grpc() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4317))
}
fn default_otlp_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4318))
}
fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_retention() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 60))
}
fn default_max_memory() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_max_request() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_queue_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_period() -> HumanDuration {
    HumanDuration(Duration::from_secs(28 * 24 * 3600))
}
fn default_min_requests() -> u64 {
    10
}
fn yes() -> bool {
    true
}
fn default_min_traces() -> usize {
    10
}
fn default_dominant_share() -> f64 {
    0.6
}
fn default_two_cause_share() -> f64 {
    0.3
}
fn default_max_traces() -> usize {
    2000
}
fn default_lookback() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}
fn default_baseline() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}
fn default_evidence_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_resolve_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(5 * 60))
}
fn default_paging_severities() -> Vec<String> {
    vec!["page".to_string(), "critical".to_string()]
}
fn default_team_keys() -> Vec<String> {
    vec!["service.owner.name".to_string(), "team".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("causeway.yaml"))
    }

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        let config = parse("{}").expect("empty config is valid");
        assert_eq!(config.listen.otlp_grpc.port(), 4317);
        assert_eq!(config.listen.otlp_http.port(), 4318);
        assert_eq!(config.listen.http.port(), 8080);
        assert_eq!(config.window.max_memory, ByteSize(1 << 30));
        assert_eq!(config.window.retention.0, Duration::from_secs(1800));
    }

    #[test]
    fn unknown_keys_are_rejected_with_file_line_and_key() {
        let error = parse("version: 1\nwindow:\n  retention: 10m\n  max_memroy: 1GiB\n").expect_err("typo must fail");
        let message = error.to_string();
        assert!(message.starts_with("causeway.yaml:4:"), "{message}");
        assert!(message.contains("max_memroy"), "{message}");
        assert!(message.contains("window"), "{message}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let message = parse("window:\n  retention: soon\n").expect_err("bad duration").to_string();
        assert!(message.contains("window.retention"), "{message}");
        assert!(message.contains("invalid duration"), "{message}");
        let message = parse("window:\n  max_memory: lots\n").expect_err("bad size").to_string();
        assert!(message.contains("window.max_memory") && message.contains("invalid size"), "{message}");
        let message = parse("version: 2\n").expect_err("future version").to_string();
        assert!(message.contains("unsupported configuration version 2"), "{message}");
    }

    #[test]
    fn journeys_in_the_spec_form_become_engine_journeys() {
        let text = "journeys:\n  - name: checkout\n    entry: { service: frontend, operation: \"POST /api/checkout\" }\n    owner: web\n    slo:\n      availability: 99.9\n      latency: { threshold_ms: 800, target: 99.0 }\n      period: 28d\n      windows: google\n";
        let config = parse(text).expect("valid journeys");
        let engine = config.engine_config(Path::new("causeway.yaml")).expect("valid engine config");
        let journey = &engine.journeys[0];
        assert_eq!(journey.entry_operation, "POST /api/checkout");
        assert!((journey.slo.availability.expect("availability") - 0.999).abs() < 1e-12);
        assert_eq!(journey.slo.latency.map(|l| l.threshold), Some(800_000_000));
        assert_eq!(journey.slo.tiers.len(), 4);
        let bad =
            parse("journeys:\n  - name: x\n    entry: { service: a, operation: b }\n    slo: { availability: 120 }\n")
                .expect("parses");
        let message = bad.engine_config(Path::new("causeway.yaml")).expect_err("120% is invalid").to_string();
        assert!(message.contains("journeys[0] (x).slo.availability"), "{message}");
        let tiers = parse("journeys:\n  - name: x\n    entry: { service: a, operation: b }\n    slo:\n      windows:\n        - { long: 1h, short: 5m, burn: 10 }\n").expect("parses");
        let engine = tiers.engine_config(Path::new("causeway.yaml")).expect("explicit tiers");
        assert_eq!(engine.journeys[0].slo.tiers[0].burn, 10.0);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(ByteSize::parse("512MiB"), Some(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("1GiB"), Some(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("64MB"), Some(ByteSize(64_000_000)));
        assert_eq!(ByteSize::parse("1000"), Some(ByteSize(1000)));
        assert_eq!(ByteSize::parse("12 parsecs"), None);
    }
}
