//! The dependency graph learned from traces: services, uninstrumented dependencies (named as
//! SPEC §4.2 names them), and the calls between them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::intern::Symbol;
use crate::model::CalleeKind;
use crate::trace::TraceView;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    /// Spans recorded by the service itself (0 for uninstrumented dependencies).
    pub spans: u64,
    /// Incoming requests (SERVER/CONSUMER spans) for services; calls for dependencies.
    pub requests: u64,
    /// Of those, how many failed.
    pub errors: u64,
    /// True when the node is only known through client spans (a database, an external API).
    pub uninstrumented: bool,
    pub callee_kind: CalleeKind,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EdgeStats {
    pub calls: u64,
    pub errors: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub nodes: BTreeMap<Symbol, NodeStats>,
    pub edges: BTreeMap<(Symbol, Symbol), EdgeStats>,
}

impl Topology {
    /// Adds one trace's spans and calls.
    pub fn observe(&mut self, view: &TraceView<'_>) {
        for index in 0..view.len() {
            let service = view.service(index);
            let kind = view.kind(index);
            let is_error = view.is_error(index);
            let node = self.nodes.entry(service).or_default();
            node.spans += 1;
            node.uninstrumented = false;
            if kind.is_incoming() {
                node.requests += 1;
                node.errors += u64::from(is_error);
                // A call without a client span (legacy instrumentation) is still an edge.
                if let Some(parent) = view.parent(index)
                    && view.service(parent) != service
                    && !view.kind(parent).is_outgoing()
                {
                    self.add_edge(view.service(parent), service, is_error);
                }
            }
            if kind.is_outgoing() {
                match view.server_child(index) {
                    Some(child) => self.add_edge(service, view.service(child), is_error),
                    None => {
                        let span = view.span(index);
                        if span.callee.is_some() && span.callee != service {
                            let dependency = self.nodes.entry(span.callee).or_insert(NodeStats {
                                uninstrumented: true,
                                callee_kind: span.callee_kind,
                                ..NodeStats::default()
                            });
                            if dependency.uninstrumented {
                                dependency.requests += 1;
                                dependency.errors += u64::from(is_error);
                            }
                            self.add_edge(service, span.callee, is_error);
                        }
                    }
                }
            }
        }
    }

    /// Direct callers of `node`.
    pub fn callers(&self, node: Symbol) -> impl Iterator<Item = Symbol> + '_ {
        self.edges.keys().filter(move |(_, callee)| *callee == node).map(|(caller, _)| *caller)
    }

    fn add_edge(&mut self, caller: Symbol, callee: Symbol, is_error: bool) {
        let edge = self.edges.entry((caller, callee)).or_default();
        edge.calls += 1;
        edge.errors += u64::from(is_error);
    }
}
