//! What an alerting rule's PromQL expression watches, and which labels its alerts will carry.
//!
//! The expression is parsed with `promql-parser` (GreptimeDB's PromQL parser) and its syntax tree
//! walked twice:
//! * **watched**: every vector selector's equality matchers (`service="payments-api"`) and regex
//!   matchers that are alternations of literals (`service=~"a|b"`) on the configured label names;
//! * **surviving labels**: the selector labels whose values are known statically (equality
//!   matchers, literal alternations) and that survive the expression: `sum by (service)` keeps
//!   `service`, `sum without (x)` keeps all but `x`, an aggregation without `by` keeps nothing,
//!   `topk`/`bottomk`/`limitk` keep everything, functions such as `rate` keep labels,
//!   `histogram_quantile` drops `le`, `label_replace`/`label_join` are evaluated when their
//!   inputs are known, `absent(...)` yields the selector's equality matchers (as Prometheus
//!   does), and binary operations follow Prometheus' vector matching (`on`/`ignoring`,
//!   `group_left`/`group_right` and their extra labels; `or` gives either side's labels).
//!
//! The result is a list of alternatives (`or` and regex alternations give several), each a
//! label set that the alerts are known to carry. Labels whose values are only known at run
//! time are absent from it: this is a static approximation, and never claims a value it cannot
//! derive.

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality, VectorSelector,
};

use crate::audit::alertmanager::LabelSet;

/// Alternatives are bounded so that a pathological expression cannot explode.
const MAX_ALTERNATIVES: usize = 64;

/// What one expression says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprAnalysis {
    /// `(label name, value)` pairs the selectors pin on the configured label names, in order of
    /// appearance, without duplicates.
    pub watched: Vec<(String, String)>,
    /// Label sets the result series are known to carry; at least one (possibly empty).
    pub label_sets: Vec<LabelSet>,
}

/// Parses and analyses an expression; the error is the parser's message.
pub fn analyze(expr: &str, label_names: &[String]) -> Result<ExprAnalysis, String> {
    let parsed = promql_parser::parser::parse(expr)?;
    let mut watched = Vec::new();
    collect_watched(&parsed, label_names, &mut watched);
    Ok(ExprAnalysis { watched, label_sets: shape_of(&parsed).alternatives })
}

/// Literal values of a regex that is an alternation of literals (`a|b`, `(a|b)`, `a\.b`);
/// `None` for anything else. An empty branch is kept as `""`.
pub fn literal_alternatives(pattern: &str) -> Option<Vec<String>> {
    let inner = pattern
        .strip_prefix("(?:")
        .or_else(|| pattern.strip_prefix('('))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(pattern);
    let mut values = Vec::new();
    for branch in inner.split('|') {
        let mut value = String::new();
        let mut characters = branch.chars();
        while let Some(character) = characters.next() {
            match character {
                '\\' => {
                    let escaped = characters.next()?;
                    if escaped.is_ascii_alphanumeric() {
                        return None; // \d, \w, \n…: a class or an escape, not a literal
                    }
                    value.push(escaped);
                }
                '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => return None,
                _ => value.push(character),
            }
        }
        values.push(value);
    }
    Some(values)
}

fn collect_watched(expr: &Expr, label_names: &[String], out: &mut Vec<(String, String)>) {
    match expr {
        Expr::VectorSelector(selector) => watched_in_selector(selector, label_names, out),
        Expr::MatrixSelector(matrix) => watched_in_selector(&matrix.vs, label_names, out),
        Expr::Aggregate(aggregate) => {
            if let Some(param) = &aggregate.param {
                collect_watched(param, label_names, out);
            }
            collect_watched(&aggregate.expr, label_names, out);
        }
        Expr::Unary(unary) => collect_watched(&unary.expr, label_names, out),
        Expr::Binary(binary) => {
            collect_watched(&binary.lhs, label_names, out);
            collect_watched(&binary.rhs, label_names, out);
        }
        Expr::Paren(paren) => collect_watched(&paren.expr, label_names, out),
        Expr::Subquery(subquery) => collect_watched(&subquery.expr, label_names, out),
        Expr::Call(call) => {
            for argument in &call.args.args {
                collect_watched(argument, label_names, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn watched_in_selector(selector: &VectorSelector, label_names: &[String], out: &mut Vec<(String, String)>) {
    for matcher in all_matchers(&selector.matchers) {
        if !label_names.contains(&matcher.name) {
            continue;
        }
        let values = match &matcher.op {
            MatchOp::Equal => vec![matcher.value.clone()],
            MatchOp::Re(_) => literal_alternatives(&matcher.value).unwrap_or_default(),
            MatchOp::NotEqual | MatchOp::NotRe(_) => Vec::new(),
        };
        for value in values {
            let pair = (matcher.name.clone(), value);
            if !pair.1.is_empty() && !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
}

fn all_matchers(matchers: &Matchers) -> impl Iterator<Item = &Matcher> {
    matchers.matchers.iter().chain(matchers.or_matchers.iter().flatten())
}

/// The labels an expression's result carries: alternatives, or a scalar (no series labels).
struct Shape {
    alternatives: Vec<LabelSet>,
    vector: bool,
}

impl Shape {
    fn scalar() -> Shape {
        Shape { alternatives: vec![LabelSet::new()], vector: false }
    }

    fn vector(alternatives: Vec<LabelSet>) -> Shape {
        Shape { alternatives: normalize(alternatives), vector: true }
    }

    fn map(self, mut transform: impl FnMut(LabelSet) -> LabelSet) -> Shape {
        Shape::vector(self.alternatives.into_iter().map(&mut transform).collect())
    }
}

/// Deduplicated, bounded, never empty.
fn normalize(alternatives: Vec<LabelSet>) -> Vec<LabelSet> {
    let mut out: Vec<LabelSet> = Vec::new();
    for alternative in alternatives {
        if out.len() == MAX_ALTERNATIVES {
            break;
        }
        if !out.contains(&alternative) {
            out.push(alternative);
        }
    }
    if out.is_empty() {
        out.push(LabelSet::new());
    }
    out
}

fn is_vector(value_type: ValueType) -> bool {
    matches!(value_type, ValueType::Vector | ValueType::Matrix)
}

fn shape_of(expr: &Expr) -> Shape {
    match expr {
        Expr::VectorSelector(selector) => Shape::vector(selector_alternatives(selector)),
        Expr::MatrixSelector(matrix) => Shape::vector(selector_alternatives(&matrix.vs)),
        Expr::Paren(paren) => shape_of(&paren.expr),
        Expr::Subquery(subquery) => shape_of(&subquery.expr),
        Expr::Unary(unary) => shape_of(&unary.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Shape::scalar(),
        Expr::Aggregate(aggregate) => aggregate_shape(aggregate),
        Expr::Binary(binary) => binary_shape(binary),
        Expr::Call(call) => call_shape(call),
        Expr::Extension(extension) => {
            if is_vector(extension.expr.value_type()) {
                Shape::vector(Vec::new())
            } else {
                Shape::scalar()
            }
        }
    }
}

/// Known labels of a selector's series: equality matchers, and one alternative per value of a
/// literal regex alternation. `name=""` means the label is absent, so it adds nothing.
fn selector_alternatives(selector: &VectorSelector) -> Vec<LabelSet> {
    let mut groups: Vec<Vec<&Matcher>> =
        selector.matchers.or_matchers.iter().map(|group| group.iter().collect()).collect();
    if !selector.matchers.matchers.is_empty() || groups.is_empty() {
        groups.push(selector.matchers.matchers.iter().collect());
    }
    let mut out = Vec::new();
    for group in groups {
        let mut alternatives = vec![LabelSet::new()];
        for matcher in group {
            if matcher.name == "__name__" {
                continue;
            }
            let values = match &matcher.op {
                MatchOp::Equal => vec![matcher.value.clone()],
                MatchOp::Re(_) => match literal_alternatives(&matcher.value) {
                    Some(values) => values,
                    None => continue,
                },
                MatchOp::NotEqual | MatchOp::NotRe(_) => continue,
            };
            let mut next = Vec::new();
            for alternative in &alternatives {
                for value in &values {
                    let mut extended = alternative.clone();
                    if !value.is_empty() {
                        extended.insert(matcher.name.clone(), value.clone());
                    }
                    next.push(extended);
                }
            }
            alternatives = normalize(next);
        }
        out.extend(alternatives);
    }
    out
}

fn aggregate_shape(aggregate: &AggregateExpr) -> Shape {
    let inner = shape_of(&aggregate.expr);
    let operator = aggregate.op.to_string().to_ascii_lowercase();
    if matches!(operator.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
        return inner; // these select series; the series keep all their labels
    }
    let mut shape = match &aggregate.modifier {
        None => Shape::vector(Vec::new()),
        Some(LabelModifier::Include(by)) => inner.map(|labels| keep_only(labels, &by.labels)),
        Some(LabelModifier::Exclude(without)) => inner.map(|labels| remove(labels, &without.labels)),
    };
    if operator == "count_values" {
        // The value label it adds overrides any known value of that name.
        if let Some(Expr::StringLiteral(label)) = aggregate.param.as_deref() {
            shape = shape.map(|labels| remove(labels, std::slice::from_ref(&label.val)));
        }
    }
    shape
}

fn keep_only(mut labels: LabelSet, names: &[String]) -> LabelSet {
    labels.retain(|name, _| names.contains(name));
    labels
}

fn remove(mut labels: LabelSet, names: &[String]) -> LabelSet {
    labels.retain(|name, _| !names.contains(name));
    labels
}

/// The labels of the "one" side that the "many" side's series are known to share: those the
/// operation matches on.
fn matched_labels(labels: &LabelSet, matching: Option<&LabelModifier>) -> LabelSet {
    match matching {
        None => labels.clone(),
        Some(LabelModifier::Include(on)) => keep_only(labels.clone(), &on.labels),
        Some(LabelModifier::Exclude(ignoring)) => remove(labels.clone(), &ignoring.labels),
    }
}

/// `many`'s labels plus what `one` is known to share with it (left wins on a conflict: such a
/// pair matches no series at run time anyway).
fn merge(many: &LabelSet, shared: LabelSet) -> LabelSet {
    let mut merged = shared;
    for (name, value) in many {
        merged.insert(name.clone(), value.clone());
    }
    merged
}

fn binary_shape(binary: &BinaryExpr) -> Shape {
    let lhs = shape_of(&binary.lhs);
    let rhs = shape_of(&binary.rhs);
    match (lhs.vector, rhs.vector) {
        (false, false) => return Shape::scalar(),
        (true, false) => return lhs,
        (false, true) => return rhs,
        (true, true) => {}
    }
    let operator = binary.op.to_string().to_ascii_lowercase();
    let matching = binary.modifier.as_ref().and_then(|modifier| modifier.matching.as_ref());
    let cardinality =
        binary.modifier.as_ref().map_or(VectorMatchCardinality::OneToOne, |modifier| modifier.card.clone());
    let pairs = |many: &Shape, one: &Shape, combine: &dyn Fn(&LabelSet, &LabelSet) -> LabelSet| {
        let mut out = Vec::new();
        for left in &many.alternatives {
            for right in &one.alternatives {
                out.push(combine(left, right));
            }
        }
        Shape::vector(out)
    };
    match operator.as_str() {
        "or" => Shape::vector(lhs.alternatives.into_iter().chain(rhs.alternatives).collect()),
        "unless" => lhs,
        "and" => pairs(&lhs, &rhs, &|left, right| merge(left, matched_labels(right, matching))),
        _ => match cardinality {
            VectorMatchCardinality::ManyToOne(include) => pairs(&lhs, &rhs, &|many, one| {
                copy_included(merge(many, matched_labels(one, matching)), one, &include.labels)
            }),
            VectorMatchCardinality::OneToMany(include) => pairs(&rhs, &lhs, &|many, one| {
                copy_included(merge(many, matched_labels(one, matching)), one, &include.labels)
            }),
            VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => {
                pairs(&lhs, &rhs, &|left, right| {
                    let merged = merge(left, matched_labels(right, matching));
                    // One-to-one results keep only the `on` labels, or drop the `ignoring` ones.
                    match matching {
                        None => merged,
                        Some(LabelModifier::Include(on)) => keep_only(merged, &on.labels),
                        Some(LabelModifier::Exclude(ignoring)) => remove(merged, &ignoring.labels),
                    }
                })
            }
        },
    }
}

/// `group_left(extra)`: the extra labels come from the "one" side (unknown there: unknown).
fn copy_included(mut labels: LabelSet, one: &LabelSet, included: &[String]) -> LabelSet {
    for name in included {
        match one.get(name) {
            Some(value) => labels.insert(name.clone(), value.clone()),
            None => labels.remove(name),
        };
    }
    labels
}

fn string_argument(call: &Call, index: usize) -> Option<&str> {
    match call.args.args.get(index).map(|argument| argument.as_ref()) {
        Some(Expr::StringLiteral(literal)) => Some(literal.val.as_str()),
        Some(Expr::Paren(paren)) => match paren.expr.as_ref() {
            Expr::StringLiteral(literal) => Some(literal.val.as_str()),
            _ => None,
        },
        _ => None,
    }
}

fn call_shape(call: &Call) -> Shape {
    let arguments = &call.args.args;
    let first_vector = || {
        arguments
            .iter()
            .find(|argument| is_vector(argument.value_type()))
            .map_or_else(|| Shape::vector(Vec::new()), |argument| shape_of(argument))
    };
    match call.func.name {
        "absent" | "absent_over_time" => Shape::vector(vec![absent_labels(arguments.first().map(|a| a.as_ref()))]),
        "vector" => Shape::vector(Vec::new()),
        "histogram_quantile" => first_vector().map(|labels| remove(labels, &["le".to_string()])),
        "label_replace" => {
            let inner = first_vector();
            match (
                string_argument(call, 1),
                string_argument(call, 2),
                string_argument(call, 3),
                string_argument(call, 4),
            ) {
                (Some(destination), Some(replacement), Some(source), Some(pattern)) => {
                    inner.map(|labels| label_replace(labels, destination, replacement, source, pattern))
                }
                (Some(destination), ..) => inner.map(|labels| remove(labels, &[destination.to_string()])),
                _ => inner,
            }
        }
        "label_join" => {
            let inner = first_vector();
            let Some(destination) = string_argument(call, 1) else {
                return inner;
            };
            let separator = string_argument(call, 2).unwrap_or("");
            let sources: Option<Vec<&str>> = (3..arguments.len()).map(|index| string_argument(call, index)).collect();
            inner.map(|mut labels| {
                let joined = sources.as_ref().and_then(|sources| {
                    sources.iter().map(|source| labels.get(*source).cloned()).collect::<Option<Vec<String>>>()
                });
                match joined.map(|values| values.join(separator)) {
                    Some(value) if !value.is_empty() => {
                        labels.insert(destination.to_string(), value);
                    }
                    _ => {
                        labels.remove(destination);
                    }
                }
                labels
            })
        }
        _ if !is_vector(call.func.return_type) => Shape::scalar(),
        _ => first_vector(),
    }
}

/// Prometheus' `absent` labels: equality matchers of a plain selector; a label with another
/// kind of matcher, or a second equality matcher, is dropped.
fn absent_labels(argument: Option<&Expr>) -> LabelSet {
    let selector = match argument {
        Some(Expr::VectorSelector(selector)) => selector,
        Some(Expr::MatrixSelector(matrix)) => &matrix.vs,
        _ => return LabelSet::new(),
    };
    let mut labels = LabelSet::new();
    let mut dropped: Vec<&str> = Vec::new();
    for matcher in all_matchers(&selector.matchers) {
        if matcher.name == "__name__" {
            continue;
        }
        if matcher.op == MatchOp::Equal
            && !labels.contains_key(&matcher.name)
            && !dropped.contains(&matcher.name.as_str())
        {
            labels.insert(matcher.name.clone(), matcher.value.clone());
        } else {
            labels.remove(&matcher.name);
            dropped.push(matcher.name.as_str());
        }
    }
    labels.retain(|_, value| !value.is_empty());
    labels
}

/// `label_replace` on known values: with the source known (or the empty source label, always
/// `""`), the anchored regex decides; with it unknown, the destination becomes unknown.
fn label_replace(mut labels: LabelSet, destination: &str, replacement: &str, source: &str, pattern: &str) -> LabelSet {
    let source_value = if source.is_empty() { Some(String::new()) } else { labels.get(source).cloned() };
    let Some(source_value) = source_value else {
        labels.remove(destination);
        return labels;
    };
    let Ok(regex) = regex::Regex::new(&format!("^(?s:{pattern})$")) else {
        labels.remove(destination);
        return labels;
    };
    if let Some(captures) = regex.captures(&source_value) {
        let mut value = String::new();
        captures.expand(replacement, &mut value);
        if value.is_empty() {
            labels.remove(destination);
        } else {
            labels.insert(destination.to_string(), value);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["service", "job", "app", "namespace", "k8s_deployment"].into_iter().map(String::from).collect()
    }

    fn check(expr: &str, watched: &[(&str, &str)], label_sets: &[&[(&str, &str)]]) {
        let analysis = analyze(expr, &names()).unwrap_or_else(|error| panic!("{expr}: {error}"));
        let expected_watched: Vec<(String, String)> =
            watched.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        assert_eq!(analysis.watched, expected_watched, "watched by {expr}");
        let expected_sets: Vec<LabelSet> = label_sets
            .iter()
            .map(|pairs| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .collect();
        assert_eq!(analysis.label_sets, expected_sets, "labels of {expr}");
    }

    #[test]
    fn selectors_and_functions_keep_labels() {
        check(
            r#"rate(http_requests_total{service="payments-api", code=~"5..", env="prod"}[5m]) > 1"#,
            &[("service", "payments-api")],
            &[&[("env", "prod"), ("service", "payments-api")]],
        );
        check(
            r#"pg_up{service="postgresql/payments"} == 0"#,
            &[("service", "postgresql/payments")],
            &[&[("service", "postgresql/payments")]],
        );
        check(
            r#"up{job=~"checkout|cart"} == 0"#,
            &[("job", "checkout"), ("job", "cart")],
            &[&[("job", "checkout")], &[("job", "cart")]],
        );
        check(r#"up{job=~"check.*"} == 0"#, &[], &[&[]]);
        check(r#"up{job!="x"} == 0"#, &[], &[&[]]);
    }

    #[test]
    fn aggregations_keep_what_they_group_by() {
        check(
            r#"sum by (service) (rate(errors{service="a", env="prod"}[5m])) / sum by (service) (rate(requests{service="a"}[5m])) > 0.01"#,
            &[("service", "a")],
            &[&[("service", "a")]],
        );
        check(r#"sum(rate(errors{service="a"}[5m])) > 1"#, &[("service", "a")], &[&[]]);
        check(
            r#"sum without (instance, env) (errors{service="a", env="prod", team="x"}) > 1"#,
            &[("service", "a")],
            &[&[("service", "a"), ("team", "x")]],
        );
        check(r#"topk(3, errors{service="a"})"#, &[("service", "a")], &[&[("service", "a")]]);
        check(
            r#"histogram_quantile(0.99, sum by (le, service) (rate(latency_bucket{service="a"}[5m]))) > 0.5"#,
            &[("service", "a")],
            &[&[("service", "a")]],
        );
    }

    #[test]
    fn binary_operations_follow_vector_matching() {
        check(
            r#"errors{service="a", env="prod"} / on (service) requests{service="a"}"#,
            &[("service", "a")],
            &[&[("service", "a")]],
        );
        check(
            r#"errors{service="a", env="prod"} / ignoring (env) requests{service="a", team="t"}"#,
            &[("service", "a")],
            &[&[("service", "a"), ("team", "t")]],
        );
        check(
            r#"errors{service="a"} * on (service) group_left (team) service_owner{team="payments"}"#,
            &[("service", "a")],
            &[&[("service", "a"), ("team", "payments")]],
        );
        check(
            r#"up{service="a"} == 0 or up{service="b"} == 0"#,
            &[("service", "a"), ("service", "b")],
            &[&[("service", "a")], &[("service", "b")]],
        );
        check(
            r#"up{service="a"} unless on (service) maintenance{service="a", team="x"}"#,
            &[("service", "a")],
            &[&[("service", "a")]],
        );
    }

    #[test]
    fn absent_and_label_functions() {
        check(r#"absent(up{job="payments", instance=~".+"})"#, &[("job", "payments")], &[&[("job", "payments")]]);
        check(
            r#"label_replace(up{job="db-1"}, "service", "postgresql/$1", "job", "db-(.*)") == 0"#,
            &[("job", "db-1")],
            &[&[("job", "db-1"), ("service", "postgresql/1")]],
        );
        check(r#"label_replace(vector(1), "service", "cron", "", "")"#, &[], &[&[("service", "cron")]]);
        check(r#"label_join(up{job="a"}, "id", "-", "job", "instance")"#, &[("job", "a")], &[&[("job", "a")]]);
        check(r#"vector(time()) > 5"#, &[], &[&[]]);
    }

    #[test]
    fn literal_alternations() {
        assert_eq!(literal_alternatives("a|b"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(literal_alternatives("(a|b\\.c)"), Some(vec!["a".into(), "b.c".into()]));
        assert_eq!(literal_alternatives("postgresql/payments"), Some(vec!["postgresql/payments".into()]));
        assert_eq!(literal_alternatives("a.*"), None);
        assert_eq!(literal_alternatives("\\d+"), None);
    }

    #[test]
    fn invalid_expressions_are_errors() {
        assert!(analyze("sum(rate(x[5m]) by", &names()).is_err());
        assert!(analyze("", &names()).is_err());
    }
}
