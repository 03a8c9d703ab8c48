//! Alertmanager's routing tree: read from its configuration file, matched by a pure function.
//!
//! Only what routing needs is read: the `route` tree (`receiver`, `matchers`, the deprecated
//! `match` and `match_re` maps, `continue`, nested `routes`) and the receivers' names. Every
//! other key (`global`, `inhibit_rules`, receiver integrations, timers, `group_by`) is ignored.
//!
//! Semantics follow Alertmanager 0.25 (`dispatch.Route.Match`, `pkg/labels`), so that
//! [`RoutingTree::receivers_for`] answers what `amtool config routes test` answers (a test
//! compares the two on many label sets):
//! * a route matches when all its matchers match; a missing label has the value `""`;
//! * a matching route returns its matching children in order, stopping after the first one
//!   without `continue: true`; when no child matches, the route itself is the result;
//! * a child route without `receiver` inherits its parent's;
//! * regex matchers are anchored (`^(?:re)$`);
//! * matcher strings use Alertmanager's syntax: `name="value"`, `!=`, `=~`, `!~`, unquoted
//!   values, OpenMetrics escapes in quoted values, several comma-separated matchers in one string,
//!   optionally in braces;
//! * a configuration Alertmanager would refuse is refused (invalid matcher, a route naming an
//!   unknown receiver, a root route with matchers or without a receiver, duplicate receivers).
//!
//! Known difference: regexes run on Rust's `regex` crate (RE2-like, linear time, like Go's
//! `regexp`), whose Perl classes (`\d`, `\w`, `\s`, `\b`) are Unicode-aware where Go's are ASCII,
//! so they can differ on non-ASCII label values; `\C` and `\Q…\E` are not supported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use crate::config::{ConfigError, parse_yaml};

/// Labels of one alert.
pub type LabelSet = BTreeMap<String, String>;

/// The compiled routing configuration.
#[derive(Debug, Clone)]
pub struct RoutingTree {
    pub root: Route,
    /// Receiver names, in file order.
    pub receivers: Vec<String>,
}

/// One node of the routing tree, with its receiver already inherited.
#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    pub matchers: Vec<LabelMatcher>,
    pub continue_matching: bool,
    pub routes: Vec<Route>,
    /// Where it is in the file, as a key path (`route.routes[1].routes[0]`).
    pub key: String,
}

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher (`service=~"payments-.*"`).
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Why an Alertmanager configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// Unreadable file or YAML that does not fit (including invalid matchers), located.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configuration Alertmanager would refuse; `line` is 0 when it cannot be found.
    #[error("{}", located(path, *line, key, message))]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

fn located(path: &Path, line: usize, key: &str, message: &str) -> String {
    if line > 0 {
        format!("{}:{line}: {key}: {message}", path.display())
    } else {
        format!("{}: {key}: {message}", path.display())
    }
}

impl LabelMatcher {
    /// A matcher; regex values are anchored like Alertmanager's (`^(?:value)$`).
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<LabelMatcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(anchored_regex(value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(LabelMatcher { name: name.to_string(), op, value: value.to_string(), regex })
    }

    /// Whether the labels satisfy this matcher; a missing label counts as `""`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Compiles `^(?:pattern)$`. Go accepts a `{` that does not start a repetition as a literal
/// (`a{b}`); Rust's parser does not, so such braces are escaped and the pattern tried again.
pub fn anchored_regex(pattern: &str) -> Result<Regex, String> {
    let anchored = format!("^(?:{pattern})$");
    Regex::new(&anchored)
        .or_else(|first| Regex::new(&escape_literal_braces(&anchored)).map_err(|_| first))
        .map_err(|error| format!("invalid regular expression {pattern:?}: {}", last_line(&error.to_string())))
}

/// Rust's regex errors end with the reason after a drawing of the pattern.
fn last_line(text: &str) -> String {
    text.lines().rfind(|line| !line.trim().is_empty()).unwrap_or(text).trim().to_string()
}

fn escape_literal_braces(pattern: &str) -> String {
    static REPETITION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\{[0-9]+(,[0-9]*)?\}").expect("static pattern compiles"));
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut escaped = false;
    for (index, character) in pattern.char_indices() {
        if escaped {
            escaped = false;
            out.push(character);
            continue;
        }
        match character {
            '\\' => {
                escaped = true;
                out.push(character);
            }
            '{' if !REPETITION.is_match(&pattern[index..]) => out.push_str("\\{"),
            _ => out.push(character),
        }
    }
    out
}

/// Parses one matcher string as Alertmanager's `labels.ParseMatchers` does: a comma-separated
/// list, optionally in braces; commas inside double quotes do not separate.
pub fn parse_matchers(text: &str) -> Result<Vec<LabelMatcher>, String> {
    let text = text.strip_prefix('{').unwrap_or(text);
    let text = text.strip_suffix('}').unwrap_or(text);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut inside_quotes = false;
    let mut escaped = false;
    for character in text.chars() {
        match character {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(character);
    }
    let last = token.trim_matches(is_go_space);
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|token| parse_matcher(token)).collect()
}

/// Go's `\s`: ASCII whitespace without the vertical tab.
fn is_go_space(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\n' | '\r' | '\x0C')
}

/// Parses one matcher (`name="value"`, `name=~value`, …) as Alertmanager's `labels.ParseMatcher`.
pub fn parse_matcher(text: &str) -> Result<LabelMatcher, String> {
    static SYNTAX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[ \t\n\r\x0C]*([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t\n\r\x0C]*(=~|=|!=|!~)[ \t\n\r\x0C]*((?s).*?)[ \t\n\r\x0C]*$")
            .expect("static pattern compiles")
    });
    let captures = SYNTAX.captures(text).ok_or_else(|| format!("bad matcher format: {text}"))?;
    let name = &captures[1];
    let op = match &captures[2] {
        "=" => MatchOp::Equal,
        "!=" => MatchOp::NotEqual,
        "=~" => MatchOp::Regex,
        _ => MatchOp::NotRegex,
    };
    let raw = &captures[3];
    let (raw_value, mut expect_trailing_quote) = match raw.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    let mut value = String::with_capacity(raw_value.len());
    let mut escaped = false;
    for (index, character) in raw_value.char_indices() {
        let is_last = index + character.len_utf8() == raw_value.len();
        if escaped {
            escaped = false;
            match character {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(character),
                _ => {
                    value.push('\\');
                    value.push(character);
                }
            }
            continue;
        }
        match character {
            '\\' if !is_last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_trailing_quote || !is_last {
                    return Err(format!("matcher value contains unescaped double quote: {raw}"));
                }
                expect_trailing_quote = false;
            }
            _ => value.push(character),
        }
    }
    if expect_trailing_quote {
        return Err(format!("matcher value contains unescaped double quote: {raw}"));
    }
    LabelMatcher::new(op, name, &value)
}

impl Route {
    /// The routes an alert with these labels reaches, in order (Alertmanager's `Route.Match`).
    pub fn matching(&self, labels: &LabelSet) -> Vec<&Route> {
        if !self.matchers.iter().all(|matcher| matcher.matches(labels)) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let matched = child.matching(labels);
            let any = !matched.is_empty();
            all.extend(matched);
            if any && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a Route>) {
        out.push(self);
        for child in &self.routes {
            child.walk(out);
        }
    }
}

impl RoutingTree {
    pub fn load(path: &Path) -> Result<RoutingTree, AlertmanagerError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        RoutingTree::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<RoutingTree, AlertmanagerError> {
        let raw: RawConfig = parse_yaml(text, path).map_err(crate::audit::without_repeated_key)?;
        let invalid = |line: usize, key: &str, message: String| AlertmanagerError::Invalid {
            path: path.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        };
        let mut receivers = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, receiver) in raw.receivers.iter().enumerate() {
            if !seen.insert(receiver.name.clone()) {
                let line = find_line(text, "name", &receiver.name, 2);
                return Err(invalid(
                    line,
                    &format!("receivers[{index}].name"),
                    format!("duplicate receiver name {:?}", receiver.name),
                ));
            }
            receivers.push(receiver.name.clone());
        }
        let Some(raw_root) = raw.route else {
            return Err(invalid(0, "route", "no route provided in config".to_string()));
        };
        let root_receiver = match raw_root.receiver.as_deref() {
            Some(receiver) if !receiver.is_empty() => receiver.to_string(),
            _ => {
                return Err(invalid(
                    find_line(text, "route", "", 1),
                    "route.receiver",
                    "root route must specify a default receiver".to_string(),
                ));
            }
        };
        if !raw_root.matchers.is_empty() || !raw_root.match_equal.is_empty() || !raw_root.match_re.is_empty() {
            return Err(invalid(
                find_line(text, "route", "", 1),
                "route",
                "root route must not have any matchers".to_string(),
            ));
        }
        if raw_root.continue_matching {
            return Err(invalid(
                find_line(text, "continue", "", 1),
                "route.continue",
                "cannot have continue in root route".to_string(),
            ));
        }
        let root = compile_route(raw_root, &root_receiver, "route".to_string());
        let mut all = Vec::new();
        root.walk(&mut all);
        for route in all {
            if !seen.contains(&route.receiver) {
                let line = find_line(text, "receiver", &route.receiver, 1);
                return Err(invalid(
                    line,
                    &format!("{}.receiver", route.key),
                    format!("undefined receiver {:?} used in route", route.receiver),
                ));
            }
        }
        Ok(RoutingTree { root, receivers })
    }

    /// Receivers an alert with these labels goes to, in order, as `amtool config routes test`
    /// prints them (a receiver reached twice is listed twice).
    pub fn receivers_for(&self, labels: &LabelSet) -> Vec<String> {
        self.root.matching(labels).into_iter().map(|route| route.receiver.clone()).collect()
    }
}

fn compile_route(raw: RawRoute, parent_receiver: &str, key: String) -> Route {
    let receiver = match raw.receiver {
        Some(receiver) if !receiver.is_empty() => receiver,
        _ => parent_receiver.to_string(),
    };
    let mut matchers: Vec<LabelMatcher> = raw.matchers.into_iter().flat_map(|line| line.0).collect();
    matchers.extend(raw.match_equal.into_iter().map(|(name, value)| LabelMatcher {
        name: name.0,
        op: MatchOp::Equal,
        value: value.0,
        regex: None,
    }));
    matchers.extend(raw.match_re.into_iter().map(|(name, value)| LabelMatcher {
        name: name.0,
        op: MatchOp::Regex,
        value: value.pattern,
        regex: Some(value.regex),
    }));
    let routes = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(index, child)| compile_route(child, &receiver, format!("{key}.routes[{index}]")))
        .collect();
    Route { receiver, matchers, continue_matching: raw.continue_matching, routes, key }
}

/// The line of the `occurrence`-th `key: value` (value optionally quoted; any value when
/// `value` is empty), 1-based; 0 when not found. serde_norway does not give per-item locations.
fn find_line(text: &str, key: &str, value: &str, occurrence: usize) -> usize {
    let mut seen = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        let Some(rest) = trimmed.strip_prefix(key) else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let found = rest.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
        if value.is_empty() || found == value {
            seen += 1;
            if seen == occurrence {
                return index + 1;
            }
        }
    }
    0
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    route: Option<RawRoute>,
    #[serde(default, deserialize_with = "null_as_default")]
    receivers: Vec<RawReceiver>,
}

#[derive(Deserialize)]
struct RawReceiver {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawRoute {
    #[serde(default, deserialize_with = "null_as_default")]
    receiver: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    matchers: Vec<MatcherLine>,
    #[serde(default, rename = "match", deserialize_with = "null_as_default")]
    match_equal: BTreeMap<LegacyLabelName, ScalarText>,
    #[serde(default, deserialize_with = "null_as_default")]
    match_re: BTreeMap<LegacyLabelName, LegacyRegex>,
    #[serde(default, rename = "continue", deserialize_with = "null_as_default")]
    continue_matching: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    routes: Vec<RawRoute>,
}

/// `null` (an empty key in YAML) reads as the default, as Go's YAML decoder does.
pub(crate) fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One entry of `matchers:`, parsed when read so the error carries the file's line.
struct MatcherLine(Vec<LabelMatcher>);

impl<'de> Deserialize<'de> for MatcherLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = ScalarText::deserialize(deserializer)?.0;
        parse_matchers(&text)
            .map(MatcherLine)
            .map_err(|error| serde::de::Error::custom(format!("invalid matcher {text:?}: {error}")))
    }
}

/// A label name in `match` / `match_re` (Prometheus' label name syntax).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct LegacyLabelName(String);

impl<'de> Deserialize<'de> for LegacyLabelName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = ScalarText::deserialize(deserializer)?.0;
        let mut characters = name.chars();
        let valid = characters.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && characters.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(LegacyLabelName(name))
        } else {
            Err(serde::de::Error::custom(format!("invalid label name {name:?}")))
        }
    }
}

struct LegacyRegex {
    pattern: String,
    regex: Regex,
}

impl<'de> Deserialize<'de> for LegacyRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pattern = ScalarText::deserialize(deserializer)?.0;
        let regex = anchored_regex(&pattern).map_err(serde::de::Error::custom)?;
        Ok(LegacyRegex { pattern, regex })
    }
}

/// A YAML scalar read as text (`code: 500` is the string `"500"`, as Go's decoder reads it).
pub(crate) struct ScalarText(pub(crate) String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Integer(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(ScalarText(match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => text,
            Scalar::Integer(number) => number.to_string(),
            Scalar::Float(number) => number.to_string(),
            Scalar::Bool(value) => value.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn tree(text: &str) -> RoutingTree {
        RoutingTree::parse(text, Path::new("alertmanager.yml")).expect("valid configuration")
    }

    const CONFIG: &str = r#"
global: { resolve_timeout: 5m }
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['service=~"payments-.*"', severity="page"]
      receiver: payments-pager
      continue: true
    - match: { team: dba }
      receiver: dba
    - matchers: ['{service!="", env!~"staging|dev"}']
      routes:
        - match_re: { severity: "warn.*" }
          receiver: chat
receivers:
  - name: default
  - name: payments-pager
    pagerduty_configs: [{ routing_key: x }]
  - name: dba
  - name: chat
"#;

    #[test]
    fn routes_like_alertmanager() {
        let tree = tree(CONFIG);
        let route = |pairs: &[(&str, &str)]| tree.receivers_for(&labels(pairs));
        assert_eq!(
            route(&[("service", "payments-api"), ("severity", "page")]),
            vec!["payments-pager", "default"],
            "continue, then the third route matches with no matching child: its inherited receiver"
        );
        assert_eq!(route(&[("service", "x"), ("severity", "warning")]), vec!["chat"]);
        assert_eq!(route(&[]), vec!["default"]);
        assert_eq!(route(&[("team", "dba"), ("service", "payments-db")]), vec!["dba"]);
        assert_eq!(route(&[("service", "x"), ("env", "staging")]), vec!["default"]);
    }

    #[test]
    fn matcher_syntax_follows_alertmanager() {
        let parsed = parse_matchers(r#"{foo = "bar", dings != "bums", }"#).expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].to_string(), r#"dings!="bums""#);
        let quoted = parse_matchers(r#"{quote="She said: \"Hi, ladies!\""}"#).expect("valid");
        assert_eq!(quoted[0].value, r#"She said: "Hi, ladies!""#);
        let unquoted = parse_matcher("statuscode=~5..").expect("valid");
        assert!(unquoted.matches(&labels(&[("statuscode", "503")])));
        assert!(!unquoted.matches(&labels(&[("statuscode", "5031")])), "anchored");
        assert!(parse_matcher("foo=\"bar").is_err());
        assert!(parse_matcher("foo=b\"ar").is_err());
        assert!(parse_matcher("1foo=bar").is_err());
        assert!(parse_matcher(r#"foo=~"(""#).is_err());
        assert_eq!(parse_matcher(r#"foo="a\nb""#).expect("valid").value, "a\nb");
        assert_eq!(parse_matcher(r#"foo="a\qb""#).expect("valid").value, "a\\qb");
        assert_eq!(parse_matcher("foo=").expect("valid").value, "");
        let braces = parse_matcher(r#"foo=~"a{b}""#).expect("Go reads a{b} as literal braces");
        assert!(braces.matches(&labels(&[("foo", "a{b}")])));
    }

    #[test]
    fn refused_configurations_name_file_line_and_key() {
        let error = RoutingTree::parse(
            "route:\n  receiver: default\n  routes:\n    - matchers: ['service=~\"(\"']\n      receiver: default\nreceivers:\n  - name: default\n",
            Path::new("am.yml"),
        )
        .expect_err("invalid regex");
        let message = error.to_string();
        assert!(message.starts_with("am.yml:4:"), "{message}");
        assert!(message.contains("route.routes[0].matchers[0]"), "{message}");
        assert!(message.contains("route.routes[0].matchers[0]: invalid matcher"), "the key path once: {message}");

        let error = RoutingTree::parse(
            "route:\n  receiver: default\n  routes:\n    - receiver: nobody\nreceivers:\n  - name: default\n",
            Path::new("am.yml"),
        )
        .expect_err("unknown receiver");
        assert_eq!(
            error.to_string(),
            "am.yml:4: route.routes[0].receiver: undefined receiver \"nobody\" used in route"
        );
        let error = RoutingTree::parse(
            "route:\n  receiver: default\n  matchers: [a=b]\nreceivers:\n  - name: default\n",
            Path::new("am.yml"),
        )
        .expect_err("root matchers");
        assert!(error.to_string().contains("root route must not have any matchers"));
        let error = RoutingTree::parse(
            "route:\n  receiver: default\n  routes:\n    - match: {\"bad-name\": x}\nreceivers:\n  - name: default\n",
            Path::new("am.yml"),
        )
        .expect_err("legacy label name");
        assert!(error.to_string().contains("invalid label name"), "{error}");
    }
}
