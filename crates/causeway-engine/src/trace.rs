//! One trace, indexed for analysis: parents, children, and effective span kinds.
//!
//! Real data is messy (SPEC §2.1): kinds may be missing, parents may be missing, several roots
//! may exist. [`TraceView`] resolves each span's *effective* kind: the recorded kind, or, when
//! unspecified, SERVER for a span whose parent is absent or in another service, CLIENT for a
//! span with a child in another service, INTERNAL otherwise.

use hashbrown::HashMap;

use crate::intern::Symbol;
use crate::model::{Dictionary, Span, SpanId, SpanKind, StatusCode};

pub struct TraceView<'a> {
    pub spans: &'a [Span],
    pub dictionary: &'a Dictionary,
    kinds: Vec<SpanKind>,
    parents: Vec<u32>,
    child_offsets: Vec<u32>,
    children: Vec<u32>,
}

const NO_PARENT: u32 = u32::MAX;

impl<'a> TraceView<'a> {
    pub fn new(spans: &'a [Span], dictionary: &'a Dictionary) -> TraceView<'a> {
        let n = spans.len();
        let mut by_id: HashMap<SpanId, u32> = HashMap::with_capacity(n);
        for (index, span) in spans.iter().enumerate() {
            // Duplicates (a span re-sent) keep their first copy.
            by_id.entry(span.span_id).or_insert(index as u32);
        }
        let mut parents = vec![NO_PARENT; n];
        let mut n_children = vec![0u32; n + 1];
        for (index, span) in spans.iter().enumerate() {
            if span.parent_span_id.is_none() {
                continue;
            }
            if let Some(&parent) = by_id.get(&span.parent_span_id)
                && parent as usize != index
                && by_id.get(&span.span_id) == Some(&(index as u32))
            {
                parents[index] = parent;
                n_children[parent as usize] += 1;
            }
        }
        // Exclusive prefix sums give each span's slice in `children`.
        let mut child_offsets = Vec::with_capacity(n + 1);
        let mut total = 0u32;
        for count in &n_children[..n] {
            child_offsets.push(total);
            total += count;
        }
        child_offsets.push(total);
        let mut fill = child_offsets.clone();
        let mut children = vec![0u32; total as usize];
        for (index, parent) in parents.iter().enumerate() {
            if *parent != NO_PARENT {
                let slot = &mut fill[*parent as usize];
                children[*slot as usize] = index as u32;
                *slot += 1;
            }
        }
        let mut view = TraceView { spans, dictionary, kinds: Vec::new(), parents, child_offsets, children };
        view.kinds = (0..n).map(|index| view.infer_kind(index)).collect();
        view
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn span(&self, index: usize) -> &'a Span {
        &self.spans[index]
    }

    /// The recorded kind, or the inferred one when the span has none.
    pub fn kind(&self, index: usize) -> SpanKind {
        self.kinds[index]
    }

    pub fn parent(&self, index: usize) -> Option<usize> {
        let parent = self.parents[index];
        (parent != NO_PARENT).then_some(parent as usize)
    }

    pub fn children(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let from = self.child_offsets[index] as usize;
        let to = self.child_offsets[index + 1] as usize;
        self.children[from..to].iter().map(|child| *child as usize)
    }

    pub fn service(&self, index: usize) -> Symbol {
        self.dictionary.service_of(&self.spans[index])
    }

    pub fn service_name(&self, index: usize) -> &'a str {
        self.dictionary.service_name(&self.spans[index])
    }

    /// Spans without a parent in this trace (true roots and orphans of a partial trace).
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.spans.len()).filter(|index| self.parents[*index] == NO_PARENT)
    }

    /// The incoming (SERVER/CONSUMER) child of an outgoing span in another service, if any.
    pub fn server_child(&self, index: usize) -> Option<usize> {
        let service = self.service(index);
        self.children(index)
            .find(|child| self.kind(*child).is_incoming() && self.service(*child) != service)
            .or_else(|| self.children(index).find(|child| self.service(*child) != service))
    }

    /// SPEC §4.2's error predicate for one span, by its effective kind.
    pub fn is_error(&self, index: usize) -> bool {
        span_is_error(&self.spans[index], self.kinds[index])
    }

    fn infer_kind(&self, index: usize) -> SpanKind {
        let span = &self.spans[index];
        if span.kind != SpanKind::Unspecified {
            return span.kind;
        }
        let service = self.service(index);
        match self.parent(index) {
            None => return SpanKind::Server,
            Some(parent) if self.service(parent) != service => return SpanKind::Server,
            Some(_) => {}
        }
        if self.children(index).any(|child| self.service(child) != service) || span.callee.is_some() {
            SpanKind::Client
        } else {
            SpanKind::Internal
        }
    }
}

/// gRPC codes that mean the server failed (SPEC §4.2): UNKNOWN, DEADLINE_EXCEEDED,
/// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
const SERVER_ERROR_RPC_CODES: [u8; 6] = [2, 4, 12, 13, 14, 15];

/// Error: status ERROR, HTTP >= 500, HTTP 4xx on a CLIENT span, a non-OK RPC status on a CLIENT
/// span, or a server-fault RPC status on a SERVER span. Status OK set explicitly wins.
pub fn span_is_error(span: &Span, kind: SpanKind) -> bool {
    match span.status {
        StatusCode::Ok => return false,
        StatusCode::Error => return true,
        StatusCode::Unset => {}
    }
    if span.http_status >= 500 {
        return true;
    }
    let outgoing = kind.is_outgoing();
    if outgoing && (400..500).contains(&span.http_status) {
        return true;
    }
    if span.has_rpc_status() && span.rpc_status != 0 {
        if outgoing {
            return true;
        }
        return SERVER_ERROR_RPC_CODES.contains(&span.rpc_status);
    }
    false
}
