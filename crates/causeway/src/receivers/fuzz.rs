//! Robustness of every decoder that reads outside input: OTLP protobuf, OTLP/JSON, Alertmanager
//! webhooks, `/api/v2/alerts`, change events. No input may panic; each either decodes or
//! returns an error.
//!
//! Two kinds of input: arbitrary bytes (proptest), and the captured samples mutated at random
//! (bit flips, byte insertions and deletions, truncations, splices), which reaches much deeper
//! into the decoders than random bytes do. `CAUSEWAY_FUZZ_SECONDS=600 cargo test -p causeway
//! --lib fuzz -- --nocapture` runs the mutation loop for ten minutes; by default it runs a fixed,
//! quick number of iterations.

use std::time::{Duration, Instant};

use causeway_engine::Dictionary;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::otlp::{self, ConvertOptions, Encoding};
use super::{alertmanager, changes};

/// Everything the receivers do with a body, as they do it.
fn exercise(bytes: &[u8]) {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        if let Ok(mut request) = otlp::decode(encoding, bytes) {
            let validation = otlp::validate(&mut request);
            let _ = otlp::decoded_bytes(&request);
            let mut dictionary = Dictionary::default();
            let mut out = Vec::new();
            otlp::convert(&request, &ConvertOptions::default(), &mut dictionary, &mut out);
            assert_eq!(out.len() as u64, validation.accepted, "every validated span converts");
        }
    }
    let _ = alertmanager::parse_webhook(bytes);
    let _ = alertmanager::parse_v2(bytes, 1_700_000_000_000_000_000);
    let _ = changes::parse_changes(bytes);
}

fn samples() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    let mut samples: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("samples directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "pb" || e == "json"))
        .map(|path| std::fs::read(path).expect("sample"))
        .collect();
    samples.sort();
    samples
}

fn mutate(rng: &mut StdRng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.random_range(1..8) {
        match rng.random_range(0..6) {
            0 if !data.is_empty() => {
                let index = rng.random_range(0..data.len());
                data[index] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let index = rng.random_range(0..=data.len());
                data.insert(index, rng.random());
            }
            2 if !data.is_empty() => {
                let index = rng.random_range(0..data.len());
                data.remove(index);
            }
            3 if !data.is_empty() => {
                let keep = rng.random_range(0..data.len());
                data.truncate(keep);
            }
            4 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() && !data.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let to = rng.random_range(from..other.len().min(from + 64) + 1).min(other.len());
                    let at = rng.random_range(0..data.len());
                    data.splice(at..at, other[from..to].iter().copied());
                }
            }
            _ if !data.is_empty() => {
                // Interesting values where varints and lengths live.
                let index = rng.random_range(0..data.len());
                data[index] = [0x00, 0x7f, 0x80, 0xff, b'"', b'{', b'}', b'0'][rng.random_range(0..8)];
            }
            _ => {}
        }
    }
    data
}

#[test]
fn mutated_samples_never_panic() {
    let corpus = samples();
    assert!(corpus.len() >= 8, "the captured samples are the seed corpus");
    let budget = std::env::var("CAUSEWAY_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(budget.unwrap_or(1));
    let mut iterations = 0u64;
    loop {
        let seed = &corpus[rng.random_range(0..corpus.len())];
        let input = mutate(&mut rng, seed, &corpus);
        exercise(&input);
        iterations += 1;
        match budget {
            Some(seconds) if started.elapsed() < Duration::from_secs(seconds) => {}
            Some(_) => break,
            None if iterations < 30_000 => {}
            None => break,
        }
    }
    eprintln!("fuzz: {iterations} mutated inputs in {:.1} s without a panic", started.elapsed().as_secs_f64());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(text in "\\PC{0,512}") {
        exercise(text.as_bytes());
    }
}
