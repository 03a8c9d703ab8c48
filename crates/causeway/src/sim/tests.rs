//! Scenario tests of the simulator's own claims (placeholder).
