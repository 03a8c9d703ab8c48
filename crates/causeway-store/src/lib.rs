//! Causeway's durable state (incidents, decisions, outbox, SLI counters, changes).
