//! The trace window: the embedded, memory-bounded store of recent spans (SPEC §8).
//!
//! Spans are grouped by trace; traces are kept in arrival order for eviction and indexed by
//! their entry spans (service, operation) for the evidence queries of SPEC §4.1. Late and
//! out-of-order spans join their trace. Two bounds hold at all times after [`TraceWindow::insert`]
//! and [`TraceWindow::advance`] return: no trace older than `retention` (by arrival), and
//! [`TraceWindow::memory_bytes`] no larger than `max_memory` (oldest traces evicted first).
//!
//! Memory is accounted from real capacities of every allocation the window owns (span vectors,
//! link boxes, hash tables, queues, interner), not estimated from counts.
//!
//! The engine reads traces through [`TraceSource`], so an external trace store can replace the
//! window later without the analysis noticing.

use std::collections::VecDeque;
use std::mem::size_of;

use hashbrown::HashMap;

use crate::intern::Symbol;
use crate::model::{Dictionary, IncomingSpan, NANOS_PER_MIN, Nanos, Span, SpanId, SpanKind, TraceId};

/// How the engine reads traces, whatever holds them.
pub trait TraceSource {
    /// The string tables the spans' symbols refer to.
    fn dictionary(&self) -> &Dictionary;

    /// All spans of a trace that are still held, in arrival order.
    fn trace(&self, trace_id: &TraceId) -> Option<&[Span]>;

    /// Visits entry spans of `(service, operation)` that ended within `[from, to]`, newest
    /// first, as `(trace id, the trace's spans, index of the entry span)`. The visitor returns
    /// `false` to stop. `operation` matches the span name or its `http.route`.
    fn visit_entries(
        &self,
        service: Symbol,
        operation: Symbol,
        from: Nanos,
        to: Nanos,
        visit: &mut dyn FnMut(TraceId, &[Span], usize) -> bool,
    );

    /// Visits spans (in other traces, or this one) that carry a link to `(trace_id, span_id)`:
    /// a consumer linked to its producer.
    fn visit_linked(&self, trace_id: &TraceId, span_id: SpanId, visit: &mut dyn FnMut(TraceId, &[Span], usize));

    /// Like [`TraceSource::visit_entries`] for every operation of `service`.
    fn visit_service_entries(
        &self,
        service: Symbol,
        from: Nanos,
        to: Nanos,
        visit: &mut dyn FnMut(TraceId, &[Span], usize) -> bool,
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowConfig {
    /// How long a trace is kept after its first span arrived.
    pub retention: Nanos,
    /// Upper bound on [`TraceWindow::memory_bytes`].
    pub max_memory: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { retention: 30 * NANOS_PER_MIN, max_memory: 1 << 30 }
    }
}

/// Counters exported as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounters {
    pub spans_inserted: u64,
    pub spans_evicted: u64,
    pub traces_evicted: u64,
    /// Traces evicted early because the memory bound was reached (subset of `traces_evicted`).
    pub traces_evicted_for_memory: u64,
}

/// Entry spans may arrive up to this long after spans that ended later (SDK batching,
/// collectors): queries look this far past their window when scanning the arrival-ordered index.
const MAX_ENTRY_LATENESS: Nanos = 2 * NANOS_PER_MIN;

pub struct TraceWindow {
    config: WindowConfig,
    dictionary: Dictionary,
    by_id: HashMap<TraceId, u32>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Live traces in arrival order (stale references are skipped and dropped lazily).
    order: VecDeque<SlotRef>,
    /// Entry spans by (service, operation), in arrival order.
    entries: HashMap<(Symbol, Symbol), VecDeque<EntryRef>>,
    /// Bytes of span vectors and their link boxes, kept exact on every change.
    span_bytes: usize,
    /// Bytes of the entry queues, kept exact on every change.
    entry_bytes: usize,
    /// Span links, reversed: (linked trace, linked span) -> traces holding spans that link to it.
    linked_from: HashMap<(TraceId, SpanId), Vec<TraceId>>,
    /// Bytes of the `linked_from` value vectors.
    link_bytes: usize,
    n_spans: usize,
    n_traces: usize,
    counters: WindowCounters,
    /// Latest `now` seen; the window never moves backwards.
    now: Nanos,
}

impl std::fmt::Debug for TraceWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWindow")
            .field("traces", &self.n_traces)
            .field("spans", &self.n_spans)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

struct Slot {
    generation: u32,
    trace_id: TraceId,
    arrived: Nanos,
    spans: Vec<Span>,
}

#[derive(Clone, Copy)]
struct SlotRef {
    slot: u32,
    generation: u32,
    arrived: Nanos,
}

#[derive(Clone, Copy)]
struct EntryRef {
    end: Nanos,
    slot: u32,
    generation: u32,
    span_index: u32,
}

impl TraceWindow {
    pub fn new(config: WindowConfig) -> TraceWindow {
        TraceWindow {
            config,
            dictionary: Dictionary::default(),
            by_id: HashMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            order: VecDeque::new(),
            entries: HashMap::new(),
            span_bytes: 0,
            entry_bytes: 0,
            linked_from: HashMap::new(),
            link_bytes: 0,
            n_spans: 0,
            n_traces: 0,
            counters: WindowCounters::default(),
            now: Nanos::MIN,
        }
    }

    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The dictionary spans are interned into; receivers convert into it before [`Self::insert`].
    pub fn dictionary_mut(&mut self) -> &mut Dictionary {
        &mut self.dictionary
    }

    pub fn counters(&self) -> WindowCounters {
        self.counters
    }

    pub fn n_spans(&self) -> usize {
        self.n_spans
    }

    pub fn n_traces(&self) -> usize {
        self.n_traces
    }

    /// Bytes currently allocated by the window, from capacities.
    pub fn memory_bytes(&self) -> usize {
        self.span_bytes
            + self.entry_bytes
            + self.link_bytes
            + self.linked_from.allocation_size()
            + self.by_id.allocation_size()
            + self.slots.capacity() * size_of::<Slot>()
            + self.free_slots.capacity() * size_of::<u32>()
            + self.order.capacity() * size_of::<SlotRef>()
            + self.entries.allocation_size()
            + self.dictionary.heap_bytes()
    }

    /// Adds spans that arrived at `now`, then enforces retention and the memory bound.
    pub fn insert(&mut self, now: Nanos, spans: impl IntoIterator<Item = IncomingSpan>) {
        self.now = self.now.max(now);
        let arrived = self.now;
        for incoming in spans {
            self.insert_one(arrived, incoming);
        }
        self.advance(self.now);
    }

    /// Evicts what retention and the memory bound no longer allow.
    pub fn advance(&mut self, now: Nanos) {
        self.now = self.now.max(now);
        let horizon = self.now.saturating_sub(self.config.retention);
        while let Some(front) = self.order.front().copied() {
            if !self.is_live(front.slot, front.generation) {
                self.order.pop_front();
                continue;
            }
            let over_memory = self.memory_bytes() > self.config.max_memory;
            if front.arrived >= horizon && !over_memory {
                break;
            }
            self.order.pop_front();
            self.evict(front.slot, over_memory && front.arrived >= horizon);
        }
        self.prune_entries(horizon);
    }

    /// Iterates all held traces (unordered). Used by the services graph and the API.
    pub fn traces(&self) -> impl Iterator<Item = (TraceId, &[Span])> {
        self.by_id.iter().map(|(trace_id, slot)| (*trace_id, self.slots[*slot as usize].spans.as_slice()))
    }

    fn insert_one(&mut self, arrived: Nanos, incoming: IncomingSpan) {
        let IncomingSpan { trace_id, span } = incoming;
        let slot_index = match self.by_id.get(&trace_id) {
            Some(index) => *index,
            None => self.open_slot(trace_id, arrived),
        };
        let is_entry = self.is_entry_candidate(slot_index, &span);
        let entry_keys = if is_entry { Some((span.name, span.route, span.end)) } else { None };
        let service = self.dictionary.service_of(&span);
        if let Some(links) = &span.links {
            for link in links.iter() {
                let holders = self.linked_from.entry((link.trace_id, link.span_id)).or_default();
                if !holders.contains(&trace_id) {
                    let before = holders.capacity();
                    holders.push(trace_id);
                    self.link_bytes += (holders.capacity() - before) * size_of::<TraceId>();
                }
            }
        }

        let slot = &mut self.slots[slot_index as usize];
        let capacity_before = slot.spans.capacity();
        self.span_bytes += span.heap_bytes();
        slot.spans.push(span);
        let capacity_after = slot.spans.capacity();
        self.span_bytes += (capacity_after - capacity_before) * size_of::<Span>();
        let span_index = (slot.spans.len() - 1) as u32;
        let generation = slot.generation;
        self.n_spans += 1;
        self.counters.spans_inserted += 1;

        if let Some((name, route, end)) = entry_keys {
            let entry = EntryRef { end, slot: slot_index, generation, span_index };
            self.push_entry((service, name), entry);
            if route.is_some() && route != name {
                self.push_entry((service, route), entry);
            }
        }
    }

    /// Entry candidates: incoming spans (SERVER/CONSUMER), and spans without a kind whose
    /// parent is absent or, as far as has arrived, in another service. Queries check again.
    fn is_entry_candidate(&self, slot_index: u32, span: &Span) -> bool {
        match span.kind {
            SpanKind::Server | SpanKind::Consumer => true,
            SpanKind::Unspecified => {
                if span.parent_span_id.is_none() {
                    return true;
                }
                let spans = &self.slots[slot_index as usize].spans;
                match spans.iter().find(|candidate| candidate.span_id == span.parent_span_id) {
                    Some(parent) => self.dictionary.service_of(parent) != self.dictionary.service_of(span),
                    None => true,
                }
            }
            _ => span.parent_span_id.is_none(),
        }
    }

    fn push_entry(&mut self, key: (Symbol, Symbol), entry: EntryRef) {
        let queue = self.entries.entry(key).or_default();
        let before = queue.capacity();
        queue.push_back(entry);
        self.entry_bytes += (queue.capacity() - before) * size_of::<EntryRef>();
    }

    fn open_slot(&mut self, trace_id: TraceId, arrived: Nanos) -> u32 {
        let slot_index = match self.free_slots.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.trace_id = trace_id;
                slot.arrived = arrived;
                index
            }
            None => {
                self.slots.push(Slot { generation: 0, trace_id, arrived, spans: Vec::new() });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot_index as usize].generation;
        self.by_id.insert(trace_id, slot_index);
        self.order.push_back(SlotRef { slot: slot_index, generation, arrived });
        self.n_traces += 1;
        slot_index
    }

    fn is_live(&self, slot: u32, generation: u32) -> bool {
        let slot = &self.slots[slot as usize];
        slot.generation == generation && !slot.spans.is_empty()
    }

    fn evict(&mut self, slot_index: u32, for_memory: bool) {
        let slot = &mut self.slots[slot_index as usize];
        let freed: usize =
            slot.spans.capacity() * size_of::<Span>() + slot.spans.iter().map(Span::heap_bytes).sum::<usize>();
        let n_spans = slot.spans.len();
        slot.spans = Vec::new();
        slot.generation = slot.generation.wrapping_add(1);
        let trace_id = slot.trace_id;
        self.span_bytes -= freed;
        self.n_spans -= n_spans;
        self.n_traces -= 1;
        self.by_id.remove(&trace_id);
        self.free_slots.push(slot_index);
        self.counters.spans_evicted += n_spans as u64;
        self.counters.traces_evicted += 1;
        if for_memory {
            self.counters.traces_evicted_for_memory += 1;
        }
    }

    fn prune_entries(&mut self, horizon: Nanos) {
        let slots = &self.slots;
        let mut freed = 0usize;
        self.entries.retain(|_, queue| {
            let before = queue.capacity();
            while let Some(front) = queue.front() {
                let slot = &slots[front.slot as usize];
                let live = slot.generation == front.generation && !slot.spans.is_empty();
                if live && front.end >= horizon.saturating_sub(MAX_ENTRY_LATENESS) {
                    break;
                }
                queue.pop_front();
            }
            if queue.len() * 4 < queue.capacity() && queue.capacity() > 64 {
                queue.shrink_to(queue.len() * 2);
            }
            freed += before - queue.capacity();
            !queue.is_empty()
        });
        self.entry_bytes -= freed * size_of::<EntryRef>();
        if !self.linked_from.is_empty() {
            let by_id = &self.by_id;
            let mut freed_links = 0usize;
            self.linked_from.retain(|_, holders| {
                let before = holders.capacity();
                holders.retain(|holder| by_id.contains_key(holder));
                let keep = !holders.is_empty();
                if !keep {
                    holders.shrink_to_fit();
                }
                freed_links += before - holders.capacity();
                keep
            });
            self.link_bytes -= freed_links * size_of::<TraceId>();
        }
    }
}

impl TraceWindow {
    fn visit_queue(
        &self,
        queue: &VecDeque<EntryRef>,
        from: Nanos,
        to: Nanos,
        visit: &mut dyn FnMut(TraceId, &[Span], usize) -> bool,
    ) -> bool {
        let scan_floor = from.saturating_sub(MAX_ENTRY_LATENESS);
        for entry in queue.iter().rev() {
            if entry.end < scan_floor {
                break;
            }
            if entry.end < from || entry.end > to {
                continue;
            }
            let slot = &self.slots[entry.slot as usize];
            if slot.generation != entry.generation || slot.spans.is_empty() {
                continue;
            }
            if !visit(slot.trace_id, &slot.spans, entry.span_index as usize) {
                return false;
            }
        }
        true
    }
}

impl TraceSource for TraceWindow {
    fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    fn trace(&self, trace_id: &TraceId) -> Option<&[Span]> {
        self.by_id.get(trace_id).map(|slot| self.slots[*slot as usize].spans.as_slice())
    }

    fn visit_entries(
        &self,
        service: Symbol,
        operation: Symbol,
        from: Nanos,
        to: Nanos,
        visit: &mut dyn FnMut(TraceId, &[Span], usize) -> bool,
    ) {
        if let Some(queue) = self.entries.get(&(service, operation)) {
            self.visit_queue(queue, from, to, visit);
        }
    }

    fn visit_linked(&self, trace_id: &TraceId, span_id: SpanId, visit: &mut dyn FnMut(TraceId, &[Span], usize)) {
        let Some(holders) = self.linked_from.get(&(*trace_id, span_id)) else {
            return;
        };
        for holder in holders {
            let Some(spans) = self.trace(holder) else { continue };
            for (index, span) in spans.iter().enumerate() {
                let links_here = span.links.as_ref().is_some_and(|links| {
                    links.iter().any(|link| link.trace_id == *trace_id && link.span_id == span_id)
                });
                if links_here {
                    visit(*holder, spans, index);
                }
            }
        }
    }

    fn visit_service_entries(
        &self,
        service: Symbol,
        from: Nanos,
        to: Nanos,
        visit: &mut dyn FnMut(TraceId, &[Span], usize) -> bool,
    ) {
        let mut keys: Vec<&(Symbol, Symbol)> =
            self.entries.keys().filter(|(entry_service, _)| *entry_service == service).collect();
        keys.sort();
        for key in keys {
            if !self.visit_queue(&self.entries[key], from, to, visit) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CalleeKind, Resource, SpanId, StatusCode};

    fn span(
        window: &mut TraceWindow,
        service: &str,
        name: &str,
        id: u64,
        parent: u64,
        kind: SpanKind,
        end: Nanos,
    ) -> Span {
        let dictionary = window.dictionary_mut();
        let service = dictionary.strings.intern(service);
        let resource = dictionary.resources.intern(Resource { service, ..Resource::default() });
        Span {
            span_id: SpanId(id),
            parent_span_id: SpanId(parent),
            start: end - 1_000_000,
            end,
            resource,
            name: dictionary.strings.intern(name),
            route: Symbol::NONE,
            callee: Symbol::NONE,
            error_type: Symbol::NONE,
            exception_type: Symbol::NONE,
            exception_message: Symbol::NONE,
            db_statement: Symbol::NONE,
            http_status: 0,
            rpc_status: Span::NO_RPC_STATUS,
            kind,
            status: StatusCode::Unset,
            callee_kind: CalleeKind::None,
            links: None,
        }
    }

    fn trace_id(n: u8) -> TraceId {
        let mut bytes = [0u8; 16];
        bytes[15] = n;
        bytes[0] = 1;
        TraceId(bytes)
    }

    fn entries_of(window: &TraceWindow, service: &str, operation: &str, from: Nanos, to: Nanos) -> Vec<TraceId> {
        let dictionary = window.dictionary();
        let service = dictionary.strings.get(service).unwrap_or(Symbol(u32::MAX));
        let operation = dictionary.strings.get(operation).unwrap_or(Symbol(u32::MAX));
        let mut out = Vec::new();
        window.visit_entries(service, operation, from, to, &mut |trace_id, _, _| {
            out.push(trace_id);
            true
        });
        out
    }

    #[test]
    fn late_and_out_of_order_spans_join_their_trace() {
        let mut window = TraceWindow::new(WindowConfig::default());
        let child = span(&mut window, "payments", "charge", 2, 1, SpanKind::Server, 900);
        window.insert(1_000, [IncomingSpan { trace_id: trace_id(1), span: child }]);
        let root = span(&mut window, "frontend", "POST /checkout", 1, 0, SpanKind::Server, 1_000);
        window.insert(5_000, [IncomingSpan { trace_id: trace_id(1), span: root }]);
        assert_eq!(window.n_traces(), 1);
        assert_eq!(window.trace(&trace_id(1)).map(<[Span]>::len), Some(2));
        assert_eq!(entries_of(&window, "frontend", "POST /checkout", 0, 2_000), vec![trace_id(1)]);
        assert_eq!(entries_of(&window, "frontend", "POST /checkout", 1_001, 2_000), Vec::<TraceId>::new());
    }

    #[test]
    fn retention_evicts_oldest_traces_first() {
        let mut window = TraceWindow::new(WindowConfig { retention: 10 * NANOS_PER_MIN, max_memory: usize::MAX });
        for n in 0..5u8 {
            let s = span(&mut window, "frontend", "GET /", 1, 0, SpanKind::Server, i64::from(n) * NANOS_PER_MIN);
            window.insert(i64::from(n) * NANOS_PER_MIN, [IncomingSpan { trace_id: trace_id(n), span: s }]);
        }
        window.advance(12 * NANOS_PER_MIN);
        assert!(window.trace(&trace_id(0)).is_none());
        assert!(window.trace(&trace_id(1)).is_none());
        assert!(window.trace(&trace_id(2)).is_some());
        assert_eq!(window.counters().traces_evicted, 2);
        assert_eq!(window.counters().traces_evicted_for_memory, 0);
        assert_eq!(window.n_spans(), 3);
    }

    #[test]
    fn memory_bound_holds_and_keeps_the_newest() {
        let max_memory = 256 * 1024;
        let mut window = TraceWindow::new(WindowConfig { retention: i64::MAX / 4, max_memory });
        for n in 0..20_000u32 {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            bytes[15] = 1;
            let root = span(&mut window, "frontend", "GET /", 1, 0, SpanKind::Server, i64::from(n));
            let child = span(&mut window, "cart", "get", 2, 1, SpanKind::Server, i64::from(n));
            window.insert(
                i64::from(n),
                [
                    IncomingSpan { trace_id: TraceId(bytes), span: root },
                    IncomingSpan { trace_id: TraceId(bytes), span: child },
                ],
            );
            assert!(window.memory_bytes() <= max_memory, "memory {} over bound at trace {n}", window.memory_bytes());
        }
        let counters = window.counters();
        assert!(counters.traces_evicted_for_memory > 0);
        assert_eq!(counters.spans_inserted - counters.spans_evicted, window.n_spans() as u64);
        let mut newest = [0u8; 16];
        newest[..4].copy_from_slice(&19_999u32.to_be_bytes());
        newest[15] = 1;
        assert_eq!(window.trace(&TraceId(newest)).map(<[Span]>::len), Some(2));
    }

    #[test]
    fn evicted_slots_are_reused_without_confusing_the_index() {
        let mut window = TraceWindow::new(WindowConfig { retention: 10, max_memory: usize::MAX });
        let old = span(&mut window, "frontend", "GET /", 1, 0, SpanKind::Server, 5);
        window.insert(0, [IncomingSpan { trace_id: trace_id(1), span: old }]);
        let new = span(&mut window, "frontend", "GET /other", 1, 0, SpanKind::Server, 100);
        window.insert(100, [IncomingSpan { trace_id: trace_id(2), span: new }]);
        assert!(window.trace(&trace_id(1)).is_none());
        assert_eq!(entries_of(&window, "frontend", "GET /", 0, 1_000), Vec::<TraceId>::new());
        assert_eq!(entries_of(&window, "frontend", "GET /other", 0, 1_000), vec![trace_id(2)]);
    }
}
