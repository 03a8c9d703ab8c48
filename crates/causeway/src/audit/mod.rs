//! `causeway audit` (SPEC §6): Prometheus alerting rules and Alertmanager routing checked
//! against the ownership model.
//!
//! Modules: `rules` (rule files), `promql` (expression analysis), `alertmanager` (routing).

pub mod alertmanager;
pub mod promql;
pub mod rules;

use crate::config::ConfigError;

/// serde_norway repeats the key path at the start of custom error messages
/// (`route.routes[1].matchers[0]: route.routes[1].matchers: invalid matcher …`); keep it once.
pub(crate) fn without_repeated_key(error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid {
            path,
            line,
            column,
            key,
            message,
        } => {
            let message = match message.split_once(": ") {
                Some((prefix, rest)) if !prefix.is_empty() && !prefix.contains(' ') && key.starts_with(prefix) => {
                    rest.to_string()
                }
                _ => message,
            };
            ConfigError::Invalid {
                path,
                line,
                column,
                key,
                message,
            }
        }
        other => other,
    }
}
